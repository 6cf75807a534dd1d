"""Reversals on a database from before them: the migration adds their columns to the
statement lines already there, once."""

from __future__ import annotations

import uuid

import asyncpg

from projections.schemas import schema_files
from services.bootstrap import create_database, migrate
from shared.store.postgres import shared_migrations, with_database
from tests.support.environment import Environment


async def test_an_existing_database_gets_the_reversal_columns_by_migration(
    environment: Environment,
) -> None:
    """A database migrated before reversals existed, with a statement line in it,
    gets exactly the new file (and the statements' changes after it) applied on the
    next migrate; the old line then reads as not reversed and no reversal, and a
    second migrate applies nothing."""
    name = f"ledger_test_mig_{uuid.uuid4().hex[:12]}"
    admin_url = with_database(environment.server_url, name)
    await create_database(admin_url)
    change = "projection/statements/0002_reversals.sql"
    everything = shared_migrations() + schema_files()
    since = [
        name
        for name, _ in everything
        if name.startswith("projection/statements/") and name >= change
    ]
    assert since[0] == change
    try:
        await migrate(admin_url, [item for item in everything if item[0] not in since])
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(
                "INSERT INTO rm_transactions VALUES"
                " (1, 2, 3, 'debit', 100, '2024-11-04', '', '', now(), 9)"
            )
            assert await migrate(admin_url, everything) == since
            row = await conn.fetchrow(
                "SELECT reversed, reversal_of FROM rm_transactions"
                " WHERE transaction_id = 1"
            )
            assert (row["reversed"], row["reversal_of"]) == (False, None)
            assert await migrate(admin_url, everything) == []
        finally:
            await conn.close()
    finally:
        conn = await asyncpg.connect(with_database(environment.server_url, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
