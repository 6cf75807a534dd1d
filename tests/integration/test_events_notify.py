"""Every insert into events notifies `ledger_events` at its COMMIT (migration 0013's
trigger), whoever the writer: the relay wakes without any writer sending it."""

from __future__ import annotations

import asyncio

import asyncpg

from services.command_api.appender import Appender
from shared.store.event_store import append
from tests.integration.scenarios import create_client, id_of, next_posting
from tests.support.environment import Environment


async def test_an_append_notifies_the_relay_at_commit_and_a_rollback_does_not(
    isolated: Environment,
    isolated_pool: asyncpg.Pool,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
) -> None:
    """Proves the trigger's NOTIFY, by appending a posting with the bare event store
    (no NOTIFY of its own) in a transaction rolled back, then in one committed: the
    listener gets nothing for the first and exactly one `ledger_events` for the
    second."""
    business_id = id_of(isolated_business)
    client_id = await create_client(isolated_appender, business_id)
    key = isolated.settings.hmac_key.encode()
    listener = await asyncpg.connect(isolated.settings.database_url)
    heard: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(
        "ledger_events", lambda *args: heard.put_nowait(args[2])
    )
    try:
        async with isolated_pool.acquire() as conn:
            event = await next_posting(conn, key, business_id, client_id, 100)
            rolled_back = conn.transaction()
            await rolled_back.start()
            await append(conn, [event])
            await rolled_back.rollback()
            await asyncio.sleep(0.2)
            assert heard.empty()
            async with conn.transaction():
                await append(conn, [event])
        assert await asyncio.wait_for(heard.get(), 5) == "ledger_events"
        await asyncio.sleep(0.2)
        assert heard.empty()
    finally:
        await listener.close()
