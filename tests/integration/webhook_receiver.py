"""A real HTTP receiver on 127.0.0.1 for the webhook tests, and the service they run
against: API, relay, projector and webhook worker in process, on an environment of
their own whose settings allow private addresses and retry within milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from services.cli.webhook_worker import wire_webhooks
from shared.config import Settings
from shared.worker.loop import run_until_stopped
from tests.support.environment import (
    Environment,
    create_environment,
    drop_environment,
    free_port,
)
from tests.support.service import http_client, workers


class Received(msgspec.Struct):
    event_id: str
    signature: str
    body: bytes


class Receiver:
    """Answers `statuses` in turn (then `status`), records every request."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.status = 200
        self.delay_s = 0.0
        self.answer = b"ok"
        self.redirected = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            Received(
                event_id=request.headers["X-Ledger-Event-Id"],
                signature=request.headers["X-Ledger-Signature"],
                body=body,
            )
        )
        await asyncio.sleep(self.delay_s)
        status = self.statuses.pop(0) if self.statuses else self.status
        if 300 <= status < 400:
            return web.Response(status=status, headers={"Location": "/elsewhere"})
        return web.Response(status=status, body=self.answer)

    async def elsewhere(self, request: web.Request) -> web.Response:
        self.redirected += 1
        return web.Response(status=200)

    def unique_event_ids(self) -> list[str]:
        """The event ids received, each once, in the order first received."""
        return list(dict.fromkeys(item.event_id for item in self.requests))


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    app.router.add_post("/elsewhere", receiver.elsewhere)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def webhook_settings(environment: Environment) -> Settings:
    return msgspec.structs.replace(
        environment.settings,
        webhook_allow_private_addresses=1,
        webhook_retry_base_s=0.02,
        webhook_retry_cap_s=0.1,
        webhook_poll_interval_s=0.02,
        webhook_timeout_s=1.0,
        webhook_failures_max=4,
        webhook_response_bytes_max=64,
    )


@asynccontextmanager
async def webhook_service(hook_settings: Settings) -> AsyncIterator[TestClient]:
    """The API, relay, projector and webhook worker, in process."""
    stop = asyncio.Event()
    worker = asyncio.ensure_future(
        run_until_stopped(wire_webhooks(hook_settings).run, stop)
    )
    try:
        async with workers(hook_settings), http_client(hook_settings) as client:
            yield client
    finally:
        stop.set()
        await worker


# The fixtures the webhook test modules import (one service per module).


@pytest.fixture(scope="module")
async def hook_environment(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    environment = await create_environment(*servers, tag="wh")
    yield environment
    await drop_environment(environment)


@pytest.fixture(scope="module")
def hook_settings(hook_environment: Environment) -> Settings:
    return webhook_settings(hook_environment)


@pytest.fixture(scope="module")
async def hook_api(hook_settings: Settings) -> AsyncIterator[TestClient]:
    async with webhook_service(hook_settings) as client:
        yield client


@pytest.fixture(scope="module")
async def hook_admin(hook_environment: Environment) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(hook_environment.admin_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture
async def hook_receiver() -> AsyncIterator[Receiver]:
    async with receiving() as running:
        yield running
