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
from shared.hash_chain import hashed_content
from shared.store.new_events import (
    COPY_COLUMNS,
    CopyRows,
    NewEvent,
    assert_contiguous,
)
from shared.upcasting import UPCASTERS

_INSERT = """
INSERT INTO events (event_id, business_id, stream_id, version, type, schema_version,
                    payload, metadata, recorded_at, hash, key_id)
SELECT event_id, business_id, stream_id, version, type, schema_version,
       payload::jsonb, metadata::jsonb, recorded_at, hash, key_id
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::integer[], $5::text[],
            $6::integer[], $7::text[], $8::text[], $9::timestamptz[], $10::text[],
            $11::text[])
     AS t(event_id, business_id, stream_id, version, type, schema_version,
          payload, metadata, recorded_at, hash, key_id)
RETURNING event_id, position
"""


async def append(
    conn: asyncpg.Connection, events: Sequence[NewEvent] | CopyRows
) -> list[e.Envelope]:
    """Insert events (inside the caller's transaction); returns them with positions.

    CopyRows (copy_rows()) are written with COPY instead of INSERT, a bulk mode for
    imports: COPY reports no positions, so only the last event comes back, the one
    a reader waits for (its position is the highest: one statement inserts the rows
    in order). A stream version that already exists means another writer got there
    first: that is raised as ConcurrencyConflict, the only place UniqueViolation is
    caught.
    """
    try:
        if isinstance(events, CopyRows):
            return [await _copy(conn, events)]
        return await _insert(conn, events)
    except asyncpg.UniqueViolationError as error:
        raise ConcurrencyConflict(str(error.detail or "")) from error


async def _insert(
    conn: asyncpg.Connection, events: Sequence[NewEvent]
) -> list[e.Envelope]:
    assert_contiguous(events)
    if not events:
        return []
    columns = (
        [event.event_id for event in events],
        [event.business_id for event in events],
        [event.stream_id for event in events],
        [event.version for event in events],
        [e.event_type(event.payload) for event in events],
        [event.schema_version for event in events],
        [msgspec.json.encode(event.payload).decode() for event in events],
        [msgspec.json.encode(event.metadata).decode() for event in events],
        [event.recorded_at for event in events],
        [event.hash for event in events],
        [event.key_id for event in events],
    )
    rows = await conn.fetch(_INSERT, *columns)
    positions = {row["event_id"]: row["position"] for row in rows}
    return [event.stored(positions[event.event_id]) for event in events]


async def _copy(conn: asyncpg.Connection, events: CopyRows) -> e.Envelope:
    await conn.copy_records_to_table(
        "events", records=events.rows, columns=COPY_COLUMNS
    )
    position = await conn.fetchval(
        "SELECT position FROM events WHERE event_id = $1", events.last.event_id
    )
    return events.last.stored(position)


# The columns envelope_from_row decodes; readers add their WHERE and ORDER BY.
SELECT_EVENTS = """
SELECT event_id, type, business_id, stream_id, version, position, schema_version,
       recorded_at, metadata::text AS metadata, payload::text AS payload, hash,
       key_id
FROM events
"""
_metadata_decoder = msgspec.json.Decoder(e.Metadata)
_payload_decoder = msgspec.json.Decoder(e.LedgerEvent)
_object_decoder = msgspec.json.Decoder(dict[str, object])


def envelope_from_row(row: asyncpg.Record) -> e.Envelope:
    """Decode a stored event: the one path every reader takes (load_stream,
    read_after, the write side's stream states, the history route, the feed, and the
    audit's replay).

    A payload stored at an older schema version goes through its upcasters first
    (shared/upcasting.py), so the envelope holds the current payload and the current
    `schema_version`; its `hash` is still the stored one, which covers the stored
    content (see stored_hashed_content).
    """
    event_type, schema_version = row["type"], row["schema_version"]
    if UPCASTERS.needs_upcast(event_type, schema_version):
        schema_version, upcast = UPCASTERS.upcast(
            event_type, schema_version, _object_decoder.decode(row["payload"])
        )
        payload = msgspec.convert(upcast, e.LedgerEvent)
    else:
        assert schema_version == UPCASTERS.current_version(event_type), (
            f"{event_type} version {schema_version} is unknown here"
        )
        payload = _payload_decoder.decode(row["payload"])
    return e.Envelope(
        event_id=row["event_id"],
        type=event_type,
        business_id=row["business_id"],
        stream_id=row["stream_id"],
        version=row["version"],
        position=row["position"],
        schema_version=schema_version,
        recorded_at=row["recorded_at"],
        metadata=_metadata_decoder.decode(row["metadata"]),
        payload=payload,
        hash=row["hash"],
    )


def stored_hashed_content(row: asyncpg.Record) -> dict[str, object]:
    """What a stored event's hash covers, from the row exactly as stored (its own
    schema version and payload, never the upcast ones): the audit chains these."""
    return hashed_content(
        event_id=str(row["event_id"]),
        event_type=row["type"],
        business_id=row["business_id"],
        stream_id=row["stream_id"],
        version=row["version"],
        schema_version=row["schema_version"],
        recorded_at=row["recorded_at"].isoformat(),
        metadata=_object_decoder.decode(row["metadata"]),
        payload=_object_decoder.decode(row["payload"]),
        key_id=row["key_id"],
    )


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
    """A reader's place in the global order: (transaction id, position)."""

    transaction_id: int = 0
    position: int = 0


# Rows are read in (transaction_id, position) order, and only those whose writing
# transaction is older than the oldest transaction still running
# (pg_snapshot_xmin(pg_current_snapshot())). Every such row is committed (or rolled
# back, and then invisible for good), and every transaction that commits later has a
# transaction id at or above that bound, so it sorts after our cursor: a reader never
# passes a row that becomes visible behind it. A position-only cursor would skip a row
# whose transaction took a lower position but committed after a higher one.
_AFTER_CURSOR = """
WHERE (transaction_id, position) > ($1::text::xid8, $2)
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY transaction_id, position
LIMIT $3
"""
_READ_AFTER = (
    SELECT_EVENTS.replace("SELECT ", "SELECT transaction_id::text::bigint AS txid, ", 1)
    + _AFTER_CURSOR
)
# The same rows, only what a chain head needs: no payload to fetch and decode.
_HEADS_AFTER = (
    "SELECT transaction_id::text::bigint AS txid, position, stream_id, business_id,"
    " version, hash FROM events" + _AFTER_CURSOR
)


_READ_AFTER_OF_BUSINESS = _READ_AFTER.replace(
    "WHERE (transaction_id", "WHERE business_id = $4 AND (transaction_id", 1
)


async def read_after(
    conn: asyncpg.Connection,
    cursor: Cursor,
    *,
    limit: int,
    business_id: int | None = None,
) -> list[tuple[Cursor, e.Envelope]]:
    """Committed events after the cursor in commit-safe order, each with its cursor
    (only one business's, if given)."""
    if business_id is None:
        rows = await conn.fetch(
            _READ_AFTER, str(cursor.transaction_id), cursor.position, limit
        )
    else:
        rows = await conn.fetch(
            _READ_AFTER_OF_BUSINESS,
            str(cursor.transaction_id),
            cursor.position,
            limit,
            business_id,
        )
    return [
        (Cursor(row["txid"], row["position"]), envelope_from_row(row)) for row in rows
    ]


async def read_heads_after(
    conn: asyncpg.Connection, cursor: Cursor, *, limit: int
) -> list[tuple[Cursor, asyncpg.Record]]:
    """read_after's rows, each with its cursor, as records of only `stream_id`,
    `business_id`, `version` and `hash` (the chain-head checkpointer's reading)."""
    rows = await conn.fetch(
        _HEADS_AFTER, str(cursor.transaction_id), cursor.position, limit
    )
    return [(Cursor(row["txid"], row["position"]), row) for row in rows]


async def load_cursor(conn: asyncpg.Connection, follower: str) -> Cursor:
    row = await conn.fetchrow(
        "SELECT transaction_id::text::bigint AS txid, position FROM relay_cursor"
        " WHERE relay = $1",
        follower,
    )
    return Cursor(row["txid"], row["position"]) if row else Cursor()


async def save_cursor(conn: asyncpg.Connection, follower: str, cursor: Cursor) -> None:
    await conn.execute(
        "INSERT INTO relay_cursor (relay, transaction_id, position)"
        " VALUES ($1, $2::text::xid8, $3)"
        " ON CONFLICT (relay) DO UPDATE"
        " SET transaction_id = excluded.transaction_id, position = excluded.position",
        follower,
        str(cursor.transaction_id),
        cursor.position,
    )
