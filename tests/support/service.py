"""The service in-process for integration tests: HTTP app, relay and projectors.

Each piece is the real one (real PostgreSQL, real RabbitMQ); they run as tasks on the
test's event loop instead of as separate processes (e2e tests start real processes).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp.test_utils import TestClient, TestServer

from services.cli.workers import wire_monitor, wire_projector, wire_relay
from services.http.app import create_app
from shared.clock import Clock
from shared.config import Settings
from shared.worker.loop import run_until_stopped


@asynccontextmanager
async def workers(settings: Settings) -> AsyncIterator[asyncio.Event]:
    """Run the relay and the projector until the block ends."""
    stop = asyncio.Event()
    tasks = [
        asyncio.ensure_future(run_until_stopped(wire_relay(settings).run, stop)),
        asyncio.ensure_future(run_until_stopped(wire_projector(settings).run, stop)),
    ]
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.gather(*tasks)


@asynccontextmanager
async def monitoring(settings: Settings) -> AsyncIterator[None]:
    """Run the monitor process's work (services/monitor/) until the block ends."""
    stop = asyncio.Event()
    monitor = wire_monitor(settings)
    task = asyncio.ensure_future(run_until_stopped(monitor.run, stop))
    try:
        yield
    finally:
        stop.set()
        await task


@asynccontextmanager
async def http_client(
    settings: Settings, clock: Clock | None = None
) -> AsyncIterator[TestClient]:
    """The HTTP app in-process; `clock` replaces the real one (shared/clock.py)."""
    server = TestServer(create_app(settings, clock))
    client = TestClient(server)
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
