"""The pools whose commits make read models and events visible commit synchronously
whatever the database's default: the read replicas' wait samples the primary's WAL
flush position, which is past a visible commit only if it was flushed first."""

from __future__ import annotations

import asyncpg

from services import bootstrap
from shared.store.postgres import database_name
from tests.support.environment import Environment


async def test_the_api_and_projector_pools_commit_synchronously_whatever_the_default(
    isolated: Environment,
) -> None:
    """Given a database whose default is synchronous_commit = off, a session of the
    API's pool (the appender, the import) and one of a projector's pool still run
    with synchronous_commit = on, while a plain session there has it off."""
    settings = isolated.settings
    name = database_name(settings.database_url)
    admin = await asyncpg.connect(isolated.admin_url)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        plain = await asyncpg.connect(settings.database_url)
        try:
            assert await plain.fetchval("SHOW synchronous_commit") == "off"
        finally:
            await plain.close()
        for open_pool in (bootstrap.api_pool, bootstrap.projector_pool):
            pool = await open_pool(settings)
            try:
                assert await pool.fetchval("SHOW synchronous_commit") == "on"
            finally:
                await pool.close()
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" RESET synchronous_commit')
        await admin.close()
