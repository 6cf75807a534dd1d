"""Fixtures for integration tests: appenders on the real pool, a superuser connection,
an isolated environment in which no relay or projector runs, and the SDK's
LedgerClient on the in-process service, directly (`api`) or through a proxy that
records and breaks traffic (`proxied`, `proxy`; ledger_client_proxy.py), and the
business whose export the export tests read (`book`, export_book.py); for the
observability tests, an app whose counters start at zero (`fresh_app`) and what the
request logger writes (`request_log`)."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.cli.businesses import provision_business
from services.cli.logs import JsonFormatter
from services.command_api.appender import Appender
from shared.client import LedgerClient
from shared.store.postgres import create_pool
from tests.integration.export_book import book_of
from tests.integration.ledger_client_proxy import FAST, Proxy, base_url
from tests.support.environment import Environment, create_environment, drop_environment
from tests.support.service import http_client


@pytest.fixture
async def admin(environment: Environment) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the session's database (sees every backend)."""
    conn = await asyncpg.connect(environment.admin_url)
    yield conn
    await conn.close()


@pytest.fixture
async def appenders(
    environment: Environment, pool: asyncpg.Pool
) -> AsyncIterator[Callable[[], Appender]]:
    """Make started Appenders on the service role's pool, each one standing for a
    process of its own."""
    started: list[Appender] = []

    def make(batch_size_max: int = 500) -> Appender:
        appender = Appender(
            pool, environment.settings.hmac_key.encode(), batch_size_max
        )
        appender.start()
        started.append(appender)
        return appender

    yield make
    for appender in started:
        await appender.stop()


@pytest.fixture(scope="session")
async def isolated(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    """A second migrated database and exchange where no relay or projector runs, so a
    test can publish and apply events itself and count exactly what happened."""
    env = await create_environment(*servers, tag="iso")
    yield env
    await drop_environment(env)


@pytest.fixture(scope="session")
async def isolated_pool(isolated: Environment) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(isolated.settings.database_url, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture
async def isolated_business(isolated: Environment) -> dict[str, object]:
    return await provision_business(
        isolated.settings, f"Isolated {uuid.uuid4().hex[:8]}"
    )


@pytest.fixture
async def isolated_appender(
    isolated: Environment, isolated_pool: asyncpg.Pool
) -> AsyncIterator[Appender]:
    appender = Appender(isolated_pool, isolated.settings.hmac_key.encode(), 500)
    appender.start()
    yield appender
    await appender.stop()


@pytest.fixture
async def api(
    service: TestClient, business: dict[str, object]
) -> AsyncIterator[LedgerClient]:
    async with LedgerClient(
        base_url(service), str(business["api_key"]), retry=FAST
    ) as client:
        yield client


@pytest.fixture
async def proxy(service: TestClient) -> AsyncIterator[tuple[Proxy, str]]:
    """The proxy and its base URL."""
    async with aiohttp.ClientSession() as session:
        proxy = Proxy(upstream=base_url(service), session=session)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        server = TestServer(app)
        await server.start_server()
        try:
            yield proxy, str(server.make_url("")).rstrip("/")
        finally:
            await server.close()


@pytest.fixture
async def proxied(
    proxy: tuple[Proxy, str], business: dict[str, object]
) -> AsyncIterator[LedgerClient]:
    async with LedgerClient(proxy[1], str(business["api_key"]), retry=FAST) as client:
        yield client


@pytest.fixture
async def book(service: TestClient, business: dict[str, Any]) -> dict[str, Any]:
    """The business export_book.book_of builds, and the rows its export must hold."""
    return await book_of(service, business)


@pytest.fixture
async def fresh_app(
    service: TestClient, environment: Environment
) -> AsyncIterator[TestClient]:
    """An API app of its own (so its counters start at zero), beside the session's
    service, whose relay and projectors keep running."""
    async with http_client(environment.settings) as client:
        yield client


@pytest.fixture
def request_log() -> Iterator[io.StringIO]:
    """What the `ledger.request` logger writes, through the JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("ledger.request")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


# The webhook tests' service (tests/integration/webhook_receiver.py): one per module.
# The two writers the feed's ordering tests race (tests/integration/event_feed.py).
from tests.integration.event_feed import connections  # noqa: E402, F401
from tests.integration.webhook_receiver import (  # noqa: E402, F401
    hook_admin,
    hook_api,
    hook_environment,
    hook_receiver,
    hook_settings,
)
