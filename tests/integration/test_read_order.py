"""read_after follows the global order, position, without ever skipping a row.

A position comes from a sequence when a row is inserted, so positions could become
visible out of order if transactions committed in another order than they drew them.
Migration 0011 makes every insert take one lock, held to its transaction's end, before
drawing: these tests hold transactions open and commit them in a scrambled order of
their transaction ids, and show that an append waits behind an open one, that
positions then rise in commit order, and that a plain `position > cursor` follower
sees every event exactly once. A write transaction held open in another database
changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.command_api.appender import Appender
from shared import events as e
from shared.store.event_store import append, read_after
from shared.store.new_events import NewEvent
from shared.store.postgres import with_database
from tests.integration.scenarios import (
    create_client,
    head_cursor,
    id_of,
    next_posting,
    wait_until,
    waiting_for_commit_order,
)
from tests.support.environment import Environment


@pytest.fixture
async def connections(isolated: Environment) -> AsyncIterator[list[asyncpg.Connection]]:
    """Six connections as the service role: five writers and one reader (the last)."""
    conns = [await asyncpg.connect(isolated.settings.database_url) for _ in range(6)]
    yield conns
    for conn in conns:
        await conn.close()


async def _postings(
    isolated: Environment,
    pool: asyncpg.Pool,
    appender: Appender,
    business_id: int,
    count: int,
) -> list[NewEvent]:
    """One not-yet-stored debit for each of `count` new clients."""
    clients = await asyncio.gather(
        *(create_client(appender, business_id) for _ in range(count))
    )
    key = isolated.settings.hmac_key.encode()
    return [
        await next_posting(pool, key, business_id, client_id, 100 * (n + 1))
        for n, client_id in enumerate(clients)
    ]


async def _append_committed(conn: asyncpg.Connection, event: NewEvent) -> e.Envelope:
    async with conn.transaction():
        [stored] = await append(conn, [event])
    return stored


async def test_an_append_waits_for_the_open_one_and_commits_after_it(
    isolated: Environment,
    isolated_pool: asyncpg.Pool,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
    connections: list[asyncpg.Connection],
) -> None:
    """Transaction A appends and stays open; B, whose transaction id is lower (it
    began first), appends meanwhile and waits on the commit-order lock, so the
    reader sees nothing. Once A commits, B goes on at a higher position, and the
    reader gets A then B, each once."""
    conn_a, conn_b, reader = connections[0], connections[1], connections[-1]
    event_a, event_b = await _postings(
        isolated, isolated_pool, isolated_appender, id_of(isolated_business), 2
    )
    cursor = await head_cursor(reader)
    transaction_b = conn_b.transaction()
    await transaction_b.start()
    await conn_b.fetchval("SELECT pg_current_xact_id()")  # B's id is the lower one
    transaction_a = conn_a.transaction()
    await transaction_a.start()
    [stored_a] = await append(conn_a, [event_a])
    appending_b = asyncio.ensure_future(append(conn_b, [event_b]))
    pid_b = conn_b.get_server_pid()
    await wait_until(
        lambda: waiting_for_commit_order(reader, pid_b), "B to wait behind A"
    )
    assert not appending_b.done()
    assert await read_after(reader, cursor, limit=100) == []

    await transaction_a.commit()
    [stored_b] = await appending_b
    await transaction_b.commit()
    assert stored_a.position < stored_b.position
    batch = await read_after(reader, cursor, limit=100)
    assert [event for _, event in batch] == [stored_a, stored_b]
    assert [cursor.position for cursor, _ in batch] == [
        stored_a.position,
        stored_b.position,
    ]
    assert await read_after(reader, batch[-1][0], limit=100) == []


async def test_a_follower_sees_every_event_once_whatever_the_commit_order(
    isolated: Environment,
    isolated_pool: asyncpg.Pool,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
    connections: list[asyncpg.Connection],
) -> None:
    """Five transactions take their ids in order 1..5 and stay open; they then append
    and commit in the order 5, 3, 1, 4, 2, each while the others are still open, with
    a foreign write transaction open in the `postgres` database throughout (it once
    held every reader back). After each commit the follower reads exactly the new
    event; the positions rise in commit order, whatever the transaction ids."""
    writers, reader = connections[:5], connections[-1]
    events = await _postings(
        isolated, isolated_pool, isolated_appender, id_of(isolated_business), 5
    )
    cursor = await head_cursor(reader)
    foreign = await asyncpg.connect(with_database(isolated.admin_url, "postgres"))
    held = foreign.transaction()
    await held.start()
    await foreign.fetchval("SELECT pg_current_xact_id()")
    try:
        transactions = [conn.transaction() for conn in writers]
        for conn, transaction in zip(writers, transactions, strict=True):
            await transaction.start()
            await conn.fetchval("SELECT pg_current_xact_id()")
        received: list[e.Envelope] = []
        stored: list[e.Envelope] = []
        for index in (4, 2, 0, 3, 1):
            [event] = await append(writers[index], [events[index]])
            await transactions[index].commit()
            stored.append(event)
            batch = await read_after(reader, cursor, limit=100)
            assert [got for _, got in batch] == [event]
            cursor = batch[-1][0]
            received.extend(got for _, got in batch)
    finally:
        await held.rollback()
        await foreign.close()
    assert received == stored
    assert [event.position for event in stored] == sorted(
        event.position for event in stored
    )
    assert [event.event_id for event in stored] == [
        events[index].event_id for index in (4, 2, 0, 3, 1)
    ]
