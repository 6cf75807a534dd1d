"""Chain-head checkpoints: the defence against deleting a stream's last events.

A hash chain proves every event up to a stream's last one, but not that the last one
is still there: drop the tail and what remains still verifies. So the heads (stream,
version, hash) of every stream changed since the last checkpoint are recorded outside
the events table (`chain_checkpoints`) and appended as `ledger.checkpoint` events, one
stream per business, which the relay publishes: every subscriber holds a copy. The
audit then finds a stream that ends below a recorded head.

The checkpointer follows the store like the relay does (read_after's order and
bound, its own cursor), so it never passes an event that commits late; it reads only
the heads' columns (read_heads_after), never a payload. The relay, the single leader,
takes a checkpoint between batches once `checkpoint_interval_s` has passed; `ledger
audit checkpoint` takes one at once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import asyncpg
import msgspec

from shared import events as e
from shared.store.event_store import (
    append,
    load_cursor,
    read_heads_after,
    save_cursor,
)
from shared.store.new_events import StreamHead, chain

FOLLOWER = "checkpoints"  # its cursor's name in relay_cursor
CHECKPOINT_LOCK = 7_170_003  # one checkpointer at a time (session advisory lock)
HEADS_PER_EVENT = 1_000
READ_BATCH = 5_000
PRINCIPAL = "ledger:checkpoints"


class Head(msgspec.Struct, frozen=True):
    business_id: int
    version: int
    hash: str


async def take_checkpoint(conn: asyncpg.Connection, key: bytes) -> int:
    """Record the heads of the streams changed since the last checkpoint; returns how
    many (0 when only checkpoint events are new: a checkpoint never feeds itself)."""
    await conn.execute("SELECT pg_advisory_lock($1)", CHECKPOINT_LOCK)
    try:
        cursor = await load_cursor(conn, FOLLOWER)
        heads: dict[str, Head] = {}
        while batch := await read_heads_after(conn, cursor, limit=READ_BATCH):
            cursor = batch[-1][0]
            for _, row in batch:
                heads[row["stream_id"]] = Head(
                    row["business_id"], row["version"], row["hash"]
                )
        if not any(not stream.startswith("checkpoint-") for stream in heads):
            if heads:
                await save_cursor(conn, FOLLOWER, cursor)
            return 0
        async with conn.transaction():
            checkpoint_id = str(uuid.uuid4())
            await _record(conn, checkpoint_id, heads)
            for business_id in sorted({head.business_id for head in heads.values()}):
                mine = [
                    e.ChainHead(stream_id=stream, version=head.version, hash=head.hash)
                    for stream, head in sorted(heads.items())
                    if head.business_id == business_id
                ]
                await _append(conn, key, checkpoint_id, business_id, mine)
            await save_cursor(conn, FOLLOWER, cursor)
        return len(heads)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", CHECKPOINT_LOCK)


async def _record(
    conn: asyncpg.Connection, checkpoint_id: str, heads: dict[str, Head]
) -> None:
    await conn.execute(
        "INSERT INTO chain_checkpoints"
        " (stream_id, business_id, version, hash, checkpoint_id)"
        " SELECT s, b, v, h, $5"
        " FROM unnest($1::text[], $2::bigint[], $3::integer[], $4::text[])"
        "   AS t(s, b, v, h)"
        " ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version,"
        " hash = excluded.hash, checkpoint_id = excluded.checkpoint_id,"
        " checkpointed_at = now()",
        list(heads),
        [head.business_id for head in heads.values()],
        [head.version for head in heads.values()],
        [head.hash for head in heads.values()],
        checkpoint_id,
    )


async def _append(
    conn: asyncpg.Connection,
    key: bytes,
    checkpoint_id: str,
    business_id: int,
    heads: Sequence[e.ChainHead],
) -> None:
    """Append the business's heads as `ledger.checkpoint` events on its own stream."""
    stream_id = e.checkpoint_stream(business_id)
    row = await conn.fetchrow(
        "SELECT version, hash FROM events WHERE stream_id = $1"
        " ORDER BY version DESC LIMIT 1",
        stream_id,
    )
    head = StreamHead(row["version"], row["hash"]) if row else StreamHead()
    metadata = e.Metadata(correlation_id=checkpoint_id, principal=PRINCIPAL)
    payloads = [
        e.ChainCheckpoint(
            checkpoint_id=checkpoint_id,
            heads=list(heads[start : start + HEADS_PER_EVENT]),
        )
        for start in range(0, len(heads), HEADS_PER_EVENT)
    ]
    recorded_at = dt.datetime.now(dt.UTC)
    new = chain(key, business_id, stream_id, head, payloads, recorded_at, metadata)
    await append(conn, new)
