"""Search on a database from before it: the migrations add the extensions, functions,
columns and index to the clients already there, once, and the service's role can
search with them."""

from __future__ import annotations

import uuid

import asyncpg

from projections.schemas import schema_files
from services.bootstrap import create_database, migrate
from shared.store.postgres import shared_migrations, with_database, with_user
from tests.support.environment import APP_ROLE, Environment

CHANGES = ["0017_search.sql", "projection/balances/0003_search.sql"]
_CLIENT = """
INSERT INTO rm_clients (client_id, business_id, account_id, category_id, first_name,
    last_name, phone_number, business_name, business_address, business_phone,
    business_location, business_email, created_at, updated_at, version)
VALUES (1, 2, 3, 4, 'José', 'Mensah', '024 412 3456', 'Café Olé', 'Accra', '',
    'Osu', 'JOSE@Example.com', now(), now(), 1)
"""
_FOUND = """
SELECT client_id FROM rm_clients
WHERE business_id = 2 AND NOT deleted
  AND (search_text LIKE '%' || public.ledger_fold($1) || '%'
       OR search_phones LIKE '%' || $2 || '%')
"""


async def test_an_existing_database_gets_search_by_migration(
    environment: Environment,
) -> None:
    """Proves the upgrade path, by migrating a database without the two search files,
    writing a client, migrating again (exactly those two apply, the client's search
    columns are computed, the index is there, a third migrate applies nothing) and
    searching it as the service's role."""
    name = f"ledger_test_mig_{uuid.uuid4().hex[:12]}"
    admin_url = with_database(environment.server_url, name)
    await create_database(admin_url)
    everything = shared_migrations() + schema_files()
    try:
        await migrate(
            admin_url, [item for item in everything if item[0] not in CHANGES]
        )
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(_CLIENT)
            assert await migrate(admin_url, everything) == CHANGES
            row = await conn.fetchrow(
                "SELECT search_text, search_phones FROM rm_clients"
            )
            assert tuple(row or ()) == (
                "jose mensah\ncafe ole\njose@example.com",
                "0244123456 233244123456\n",
            )
            assert await conn.fetchval(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'rm_clients_search'"
            ) == (
                "CREATE INDEX rm_clients_search ON public.rm_clients USING gin"
                " (business_id, search_text gin_trgm_ops, search_phones gin_trgm_ops)"
                " WHERE (NOT deleted)"
            )
            assert await migrate(admin_url, everything) == []
        finally:
            await conn.close()
        app = await asyncpg.connect(with_user(admin_url, APP_ROLE))
        try:
            searches = [("JOSÉ", "x"), ("CAFE", "x"), ("nobody", "4412345")]
            found = [await app.fetch(_FOUND, *search) for search in searches]
            assert found == [[(1,)], [(1,)], [(1,)]]
            assert await app.fetch(_FOUND, "nobody", "x") == []
        finally:
            await app.close()
    finally:
        conn = await asyncpg.connect(with_database(environment.server_url, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
