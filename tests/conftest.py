"""Test environment: the real PostgreSQL and RabbitMQ, isolated per test session.

Each session creates its own databases (`ledger_test_<hex>`) and its own uniquely named
exchange and queues, so it never touches the `ledger` database or the `ledger.events`
exchange a running service uses. The servers are the local ones (or wherever
LEDGER_TEST_DATABASE_URL / LEDGER_DATABASE_URL and LEDGER_AMQP_URL point); where they
do not answer and a Docker engine exists, testcontainers starts them instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from pytest_asyncio import is_async_test

from services.cli.businesses import provision_business
from tests.support.environment import Environment, create_environment, drop_environment
from tests.support.service import http_client, workers

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    session_scope = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if is_async_test(item):
            item.add_marker(session_scope, append=False)


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def servers() -> Iterator[tuple[str, str]]:
    """(PostgreSQL superuser URL, AMQP URL) of servers that answer."""
    postgres = os.environ.get("LEDGER_TEST_DATABASE_URL") or os.environ.get(
        "LEDGER_DATABASE_URL", DEFAULT_POSTGRES
    )
    amqp = os.environ.get("LEDGER_AMQP_URL", DEFAULT_AMQP)
    containers = []
    if not _answers(postgres, 5432) or not _answers(amqp, 5672):
        if shutil.which("docker") is None:
            pytest.exit(
                "PostgreSQL or RabbitMQ does not answer and there is no Docker engine: "
                "run `make services` (or set LEDGER_DATABASE_URL / LEDGER_AMQP_URL)",
                returncode=3,
            )
        from testcontainers.postgres import PostgresContainer
        from testcontainers.rabbitmq import RabbitMqContainer

        pg = PostgresContainer("postgres:16", username="postgres", password="postgres")
        mq = RabbitMqContainer("rabbitmq:3.13")
        containers = [pg.start(), mq.start()]
        postgres = pg.get_connection_url(driver=None)
        amqp = f"amqp://guest:guest@{mq.get_container_host_ip()}:{mq.get_exposed_port(5672)}/"
    yield postgres, amqp
    for container in containers:
        container.stop()


@pytest.fixture(scope="session")
async def environment(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    """A migrated throwaway database and unique broker names for in-process tests."""
    env = await create_environment(*servers, tag="it")
    yield env
    await drop_environment(env)


@pytest.fixture(scope="session")
async def pool(environment: Environment) -> AsyncIterator[asyncpg.Pool]:
    from shared.store.postgres import create_pool

    pool = await create_pool(environment.settings.database_url, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def service(environment: Environment) -> AsyncIterator[TestClient]:
    """The HTTP API with relay and projectors running, in-process."""
    async with (
        workers(environment.settings),
        http_client(environment.settings) as client,
    ):
        yield client


@pytest.fixture
async def business(environment: Environment) -> dict[str, object]:
    """A fresh business: business_id, owner_id, bid, api_key and ready-made headers."""
    created = await provision_business(
        environment.settings, f"Business {uuid.uuid4().hex[:8]}"
    )
    created["headers"] = {"Authorization": f"Bearer {created['api_key']}"}
    return created
