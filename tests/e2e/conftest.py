"""End to end: the real `ledger run` supervisor and its child processes, over HTTP.

One session starts `python -m services.cli.main run` exactly as `make run` does
(migrate, then API, relay and the projector as child processes) against a throwaway
database and uniquely named exchange and queues, on a free port. Tests drive it with
aiohttp over real sockets and create their businesses with the real CLI.
Everything that must become true is waited for on a deadline, never with a bare sleep.

The service's output goes to `ledger-run.log` under pytest's temporary directory;
LEDGER_E2E_LOG_LEVEL (default WARNING) sets its log level.

The pieces live beside this file: `supervisor.py` starts and stops `ledger run` and
runs the CLI, `ledger_api.py` is the HTTP client, `seed_shapes.py` holds the answers'
shapes and `deadlines.py` the waits.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.e2e.deadlines import START_DEADLINE_S, wait_until
from tests.e2e.ledger_api import Api
from tests.e2e.supervisor import (
    LedgerService,
    children_of,
    create_business,
    is_running,
    launch,
    running,
)
from tests.support.environment import create_environment, drop_environment


@pytest.fixture(scope="session")
def log_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where `ledger run` writes its output (pytest keeps the last few runs' copies)."""
    return tmp_path_factory.mktemp("ledger-run")


@pytest.fixture(scope="session")
async def ledger(
    servers: tuple[str, str], log_directory: Path
) -> AsyncIterator[LedgerService]:
    """`ledger run` for the session (see `running`)."""
    async with running(servers, log_directory / "ledger-run.log", "e2e") as service:
        yield service


@pytest.fixture(scope="session")
async def http(ledger: LedgerService) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        base_url=ledger.base_url, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        yield session


@pytest.fixture(scope="session")
async def admin_pool(ledger: LedgerService) -> AsyncIterator[asyncpg.Pool]:
    """A superuser pool on the service's database, to look at the event store."""
    pool = await asyncpg.create_pool(
        ledger.environment.admin_url, min_size=1, max_size=2
    )
    yield pool
    await pool.close()


@pytest.fixture
async def business(ledger: LedgerService) -> dict[str, Any]:
    """A fresh business made by the real CLI: nothing else in it but "Uncategorised"."""
    return await create_business(ledger)


@pytest.fixture
def api(http: aiohttp.ClientSession, business: dict[str, Any]) -> Api:
    """The API with the fresh business's key."""
    return Api(http, str(business["api_key"]))


@pytest.fixture
def anonymous(http: aiohttp.ClientSession) -> Api:
    """The API without any key."""
    return Api(http, None)


@pytest.fixture
async def own_ledger(
    servers: tuple[str, str], tmp_path: Path
) -> AsyncIterator[LedgerService]:
    """`ledger run` on a free port against an environment of its own, answering
    /readyz; teardown kills whatever is left of it and drops the environment."""
    environment = await create_environment(*servers, tag="sigint")
    service = launch(environment, tmp_path / "ledger-run.log")
    process = service.process
    children: list[int] = []
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=5)
        ) as http:

            async def ready() -> bool:
                assert process.poll() is None, service.log_tail()
                children[:] = children_of(process.pid)
                try:
                    async with http.get(service.base_url + "/readyz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_until(ready, START_DEADLINE_S, "GET /readyz answers 200")
        yield service
    finally:
        try:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            for child in children_of(process.pid) + children:
                if is_running(child):
                    os.kill(child, signal.SIGKILL)
        finally:
            await drop_environment(environment)
