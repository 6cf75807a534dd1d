"""A test's own database, with the service (API, relay, projectors) in-process on it,
one business, an admin connection and a pool: for tests that rewrite or vacuum the
whole database, which the session's shared one must not see."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from shared.store.postgres import create_pool
from tests.support.environment import Environment, create_environment, drop_environment
from tests.support.service import http_client, workers


class Own(msgspec.Struct, frozen=True):
    env: Environment
    service: TestClient
    business: dict[str, Any]
    admin: asyncpg.Connection
    pool: asyncpg.Pool


@asynccontextmanager
async def own_database(servers: tuple[str, str], tag: str) -> AsyncIterator[Own]:
    env = await create_environment(*servers, tag=tag)
    try:
        admin = await asyncpg.connect(env.admin_url)
        try:
            async with (
                workers(env.settings),
                http_client(env.settings) as service,
                await create_pool(env.settings.database_url, max_size=2) as pool,
            ):
                business = await provision_business(env.settings, tag.capitalize())
                business["headers"] = {"Authorization": f"Bearer {business['api_key']}"}
                yield Own(env, service, business, admin, pool)
        finally:
            await admin.close()
    finally:
        await drop_environment(env)
