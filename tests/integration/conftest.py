"""Fixtures for integration tests: appenders on the real pool, a superuser connection,
and an isolated environment in which no relay or projector runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from services.cli.businesses import provision_business
from services.command_api.appender import Appender
from shared.store.postgres import create_pool
from tests.support.environment import Environment, create_environment, drop_environment


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
