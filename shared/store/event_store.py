"""Hop 3: the event store. append(), load_stream() and read_after() on asyncpg.

The events table is also the outbox: the relay follows it with read_after(). Every
writer appends here, on the connection and inside the transaction it is given
(services/command_api/commit.py): the appender's batches with INSERT, an import's
rows with COPY (append's bulk mode, copy_rows()).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec

from shared import events as e
from shared.errors import ConcurrencyConflict
from shared.store.event_rows import SELECT_EVENTS, envelope_from_row
from shared.store.new_events import (
    COPY_COLUMNS,
    CopyRows,
    NewEvent,
    assert_contiguous,
    new_keys,
)

_INSERT = """
INSERT INTO events (event_id, business_id, stream_id, version, type, schema_version,
                    payload, metadata, recorded_at, hash, key_id, sealed)
SELECT event_id, business_id, stream_id, version, type, schema_version,
       payload::jsonb, metadata::jsonb, recorded_at, hash, key_id, sealed
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::integer[], $5::text[],
            $6::integer[], $7::text[], $8::text[], $9::timestamptz[], $10::text[],
            $11::text[], $12::bytea[])
     AS t(event_id, business_id, stream_id, version, type, schema_version,
          payload, metadata, recorded_at, hash, key_id, sealed)
RETURNING event_id, position, transaction_id::text AS transaction_id
"""
# The same, with the new clients' keys (shared/personal_data.py) in the statement:
# a key is never without its client.created event, nor that event without its key.
_INSERT_WITH_KEYS = (
    """
WITH keys AS (
    INSERT INTO client_keys (business_id, stream_id, wrapped)
    SELECT * FROM unnest($13::bigint[], $14::text[], $15::bytea[])
)"""
    + _INSERT
)


class Appended(msgspec.Struct, frozen=True):
    """append_returning's answer: the stored events (a COPY's last only), and the
    writing transaction's id (None when there was nothing to write)."""

    stored: list[e.Envelope]
    transaction_id: str | None


async def append(
    conn: asyncpg.Connection, events: Sequence[NewEvent] | CopyRows
) -> list[e.Envelope]:
    """Insert events (inside the caller's transaction); returns them with positions."""
    return (await append_returning(conn, events)).stored


async def append_returning(
    conn: asyncpg.Connection, events: Sequence[NewEvent] | CopyRows
) -> Appended:
    """append(), and the transaction id, from the same round trip (the one write
    transaction needs it to ask after a lost COMMIT: services/command_api/commit.py).

    CopyRows (copy_rows()) are written with COPY instead of INSERT, a bulk mode for
    imports: COPY reports no positions, so only the last event comes back, the one
    a reader waits for (its position is the highest: one statement inserts the rows
    in order). A stream version that already exists means another writer got there
    first: that is raised as ConcurrencyConflict, the only place UniqueViolation is
    caught.
    """
    try:
        if isinstance(events, CopyRows):
            return await _copy(conn, events)
        return await _insert(conn, events)
    except asyncpg.UniqueViolationError as error:
        raise ConcurrencyConflict(str(error.detail or "")) from error


async def _insert(conn: asyncpg.Connection, events: Sequence[NewEvent]) -> Appended:
    assert_contiguous(events)
    if not events:
        return Appended([], None)
    columns = (
        [event.event_id for event in events],
        [event.business_id for event in events],
        [event.stream_id for event in events],
        [event.version for event in events],
        [e.event_type(event.payload) for event in events],
        [event.schema_version for event in events],
        [msgspec.json.encode(event.stored_payload).decode() for event in events],
        [msgspec.json.encode(event.metadata).decode() for event in events],
        [event.recorded_at for event in events],
        [event.hash for event in events],
        [event.key_id for event in events],
        [event.sealed for event in events],
    )
    keys = new_keys(events)
    if keys:
        business_ids, stream_ids, wrapped = zip(*keys, strict=True)
        rows = await conn.fetch(
            _INSERT_WITH_KEYS, *columns, business_ids, stream_ids, wrapped
        )
    else:
        rows = await conn.fetch(_INSERT, *columns)
    positions = {row["event_id"]: row["position"] for row in rows}
    stored = [event.stored(positions[event.event_id]) for event in events]
    return Appended(stored, rows[0]["transaction_id"])


async def _copy(conn: asyncpg.Connection, events: CopyRows) -> Appended:
    if events.keys:
        await conn.copy_records_to_table(
            "client_keys",
            records=events.keys,
            columns=("business_id", "stream_id", "wrapped"),
        )
    await conn.copy_records_to_table(
        "events", records=events.rows, columns=COPY_COLUMNS
    )
    row = await conn.fetchrow(
        "SELECT position, transaction_id::text AS transaction_id FROM events"
        " WHERE event_id = $1",
        events.last.event_id,
    )
    return Appended([events.last.stored(row["position"])], row["transaction_id"])


async def load_stream(
    conn: asyncpg.Connection | asyncpg.Pool,
    stream_id: str,
    *,
    after_version: int = 0,
    up_to_version: int | None = None,
) -> list[e.Envelope]:
    """A stream's events after `after_version` (and up to `up_to_version`), in order."""
    rows = await conn.fetch(
        SELECT_EVENTS + "WHERE stream_id = $1 AND version > $2 AND version <= $3"
        " ORDER BY version",
        stream_id,
        after_version,
        up_to_version if up_to_version is not None else 2**31 - 1,
    )
    events = [envelope_from_row(row) for row in rows]
    for offset, event in enumerate(events):
        assert event.version == after_version + offset + 1, "stream has a gap"
    if up_to_version is not None:
        assert len(events) == up_to_version - after_version, "stream is short"
    return events


class Cursor(msgspec.Struct, frozen=True):
    """A reader's place in the global order: the last position it has read.

    Positions are drawn in commit order (migration 0011: every insert first takes one
    transaction-level lock, held to its COMMIT), so a row that commits later always
    has a higher position than every row visible now: `position > cursor` never
    skips one, whatever other transactions on the server are doing.
    """

    position: int = 0


_AFTER_CURSOR = """
WHERE position > $1
ORDER BY position
LIMIT $2
"""
_READ_AFTER = SELECT_EVENTS + _AFTER_CURSOR
# The same rows, only what a chain head needs: no payload to fetch and decode.
_HEADS_AFTER = (
    "SELECT position, stream_id, business_id, version, hash FROM events" + _AFTER_CURSOR
)
_READ_AFTER_OF_BUSINESS = _READ_AFTER.replace(
    "WHERE position", "WHERE business_id = $3 AND position", 1
)


async def read_after(
    conn: asyncpg.Connection,
    cursor: Cursor,
    *,
    limit: int,
    business_id: int | None = None,
) -> list[tuple[Cursor, e.Envelope]]:
    """Committed events after the cursor in commit order, each with its cursor (only
    one business's, if given)."""
    rows = await read_rows_after(conn, cursor, limit=limit, business_id=business_id)
    return [(Cursor(row["position"]), envelope_from_row(row)) for row in rows]


async def read_rows_after(
    conn: asyncpg.Connection,
    cursor: Cursor,
    *,
    limit: int,
    business_id: int | None = None,
) -> list[asyncpg.Record]:
    """read_after's rows, not yet decoded (envelope_from_row decodes each): a replay
    decodes one batch while the previous one is being applied."""
    rows: list[asyncpg.Record]
    if business_id is None:
        rows = await conn.fetch(_READ_AFTER, cursor.position, limit)
    else:
        rows = await conn.fetch(
            _READ_AFTER_OF_BUSINESS, cursor.position, limit, business_id
        )
    return rows


async def read_heads_after(
    conn: asyncpg.Connection, cursor: Cursor, *, limit: int
) -> list[tuple[Cursor, asyncpg.Record]]:
    """read_after's rows, each with its cursor, as records of only `stream_id`,
    `business_id`, `version` and `hash` (the chain-head checkpointer's reading)."""
    rows = await conn.fetch(_HEADS_AFTER, cursor.position, limit)
    return [(Cursor(row["position"]), row) for row in rows]


async def load_cursor(conn: asyncpg.Connection, follower: str) -> Cursor:
    position = await conn.fetchval(
        "SELECT position FROM relay_cursor WHERE relay = $1", follower
    )
    return Cursor(position) if position is not None else Cursor()


async def save_cursor(conn: asyncpg.Connection, follower: str, cursor: Cursor) -> None:
    await conn.execute(
        "INSERT INTO relay_cursor (relay, position) VALUES ($1, $2)"
        " ON CONFLICT (relay) DO UPDATE SET position = excluded.position",
        follower,
        cursor.position,
    )
