"""read_after follows the global order without skipping a row that commits late.

A position comes from a sequence when the row is inserted, not when its transaction
commits, so positions can become visible out of order. These tests make that happen
with explicitly held transactions and show that read_after (transaction id below the
snapshot's xmin, ordered by transaction then position) still hands every event over
exactly once, where a `position > cursor` follower loses some.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.command_api.appender import Appender
from shared import events as e
from shared.store.event_store import append, read_after
from shared.store.new_events import NewEvent
from tests.integration.scenarios import (
    create_client,
    head_cursor,
    id_of,
    next_posting,
    wait_until_readable,
)
from tests.support.environment import Environment


@pytest.fixture
async def connections(isolated: Environment) -> AsyncIterator[list[asyncpg.Connection]]:
    """Six connections as the service role: five writers and one reader (the last)."""
    conns = [await asyncpg.connect(isolated.settings.database_url) for _ in range(6)]
    yield conns
    for conn in conns:
        await conn.close()


async def _naive_after(reader: asyncpg.Connection, position: int) -> list[int]:
    rows = await reader.fetch(
        "SELECT position FROM events WHERE position > $1 ORDER BY position", position
    )
    return [row["position"] for row in rows]


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


async def test_an_append_that_commits_late_is_not_skipped(
    isolated: Environment,
    isolated_pool: asyncpg.Pool,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
    connections: list[asyncpg.Connection],
) -> None:
    """Transaction A appends first (lower position) and stays open while B appends and
    commits: a naive `position > cursor` reader already sees B and moves past A for
    good, while read_after returns nothing; once A commits, read_after returns A then B,
    each exactly once."""
    conn_a, conn_b, reader = connections[0], connections[1], connections[-1]
    event_a, event_b = await _postings(
        isolated, isolated_pool, isolated_appender, id_of(isolated_business), 2
    )
    await wait_until_readable(reader)
    cursor = await head_cursor(reader)
    naive_position = await reader.fetchval("SELECT max(position) FROM events")
    transaction_a = conn_a.transaction()
    await transaction_a.start()
    [stored_a] = await append(conn_a, [event_a])
    async with conn_b.transaction():
        [stored_b] = await append(conn_b, [event_b])
    assert stored_a.position < stored_b.position

    assert await _naive_after(reader, naive_position) == [stored_b.position]
    naive_position = stored_b.position
    assert await read_after(reader, cursor, limit=100) == []

    await transaction_a.commit()
    await wait_until_readable(reader, [stored_a.stream_id, stored_b.stream_id])
    batch = await read_after(reader, cursor, limit=100)
    assert [event for _, event in batch] == [stored_a, stored_b]
    (cursor_a, _), (cursor_b, _) = batch
    assert (cursor_a.transaction_id, cursor_a.position) < (
        cursor_b.transaction_id,
        cursor_b.position,
    )
    assert cursor_a.position == stored_a.position
    assert await read_after(reader, cursor_b, limit=100) == []
    assert await _naive_after(reader, naive_position) == [], (
        "the naive reader skipped A"
    )


async def test_a_follower_sees_every_event_once_whatever_the_commit_order(
    isolated: Environment,
    isolated_pool: asyncpg.Pool,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
    connections: list[asyncpg.Connection],
) -> None:
    """Five transactions append in position order and commit in the order 5, 3, 1, 4, 2
    while two followers poll after every commit: the read_after follower only ever
    holds a prefix of the five in position order, never one whose lower transactions
    are still open, and ends with all five exactly once; the `position > cursor`
    follower ends with only the fifth."""
    writers, reader = connections[:5], connections[-1]
    events = await _postings(
        isolated, isolated_pool, isolated_appender, id_of(isolated_business), 5
    )
    await wait_until_readable(reader)
    cursor = await head_cursor(reader)
    naive_position = await reader.fetchval("SELECT max(position) FROM events")
    transactions = [conn.transaction() for conn in writers]
    stored: list[e.Envelope] = []
    for conn, transaction, event in zip(writers, transactions, events, strict=True):
        await transaction.start()
        stored.extend(await append(conn, [event]))
    assert [event.position for event in stored] == sorted(
        event.position for event in stored
    )

    received: list[uuid.UUID] = []
    naive_received: list[int] = []
    committed: set[int] = set()
    for index in (4, 2, 0, 3, 1):
        await transactions[index].commit()
        committed.add(index)
        batch = await read_after(reader, cursor, limit=100)
        if batch:
            cursor = batch[-1][0]
        received.extend(event.event_id for _, event in batch)
        leading = next(n for n in range(6) if n not in committed)
        assert received == [event.event_id for event in stored[: len(received)]]
        assert len(received) <= leading
        positions = await _naive_after(reader, naive_position)
        naive_received.extend(positions)
        naive_position = max([naive_position, *positions])

    await wait_until_readable(reader, [event.stream_id for event in stored])
    received.extend(
        event.event_id for _, event in await read_after(reader, cursor, limit=100)
    )
    assert received == [event.event_id for event in stored]
    assert naive_received == [stored[4].position]
