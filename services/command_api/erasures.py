"""Hop 3 for an erasure: what its transaction writes besides its client.erased event.

The client's key is deleted (client_keys, migration 0015), so every sealed field of
its stream becomes unreadable at once, in this database and in any backup taken from
now on; and the answers kept for its Idempotency-Keys get their personal fields
nulled (shared/personal_data.nulled_answer), keeping their key and status, so a
retry still replays without applying twice. Both in the transaction of the event
(services/command_api/commit.py), after the batch's own answers are stored: an
answer stored by the same batch is nulled too.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from shared import events as e
from shared.personal_data import nulled_answer
from shared.store.new_events import NewEvent

# Three statements, each with a snapshot of its own: the keys first, which waits for
# any transaction keeping an answer of these clients (it holds their key's row: see
# idempotency._STORE) to commit; then the kept answers, that one's among them.
_DELETE_KEYS = """
DELETE FROM client_keys k
USING unnest($1::bigint[], $2::text[]) AS x(business_id, stream_id)
WHERE k.business_id = x.business_id AND k.stream_id = x.stream_id
"""
_ANSWERS = """
SELECT i.business_id, i.key, i.body FROM idempotency_keys i
JOIN unnest($1::bigint[], $2::text[]) AS x(business_id, stream_id)
  ON i.business_id = x.business_id AND i.stream_id = x.stream_id
FOR UPDATE OF i
"""
_NULL_ANSWERS = """
UPDATE idempotency_keys i SET body = x.body
FROM unnest($1::bigint[], $2::text[], $3::bytea[]) AS x(business_id, key, body)
WHERE i.business_id = x.business_id AND i.key = x.key
"""


def erased_streams(events: Sequence[NewEvent]) -> list[tuple[int, str]]:
    """(business id, stream id) of each client the events erase."""
    return [
        (event.business_id, event.stream_id)
        for event in events
        if isinstance(event.payload, e.ClientErased)
    ]


async def erase(conn: asyncpg.Connection, streams: Sequence[tuple[int, str]]) -> None:
    """Destroy the clients' keys and null their kept answers' personal fields
    (shared/personal_data.nulled_answer: key order and numbers as they were)."""
    if not streams:
        return
    business_ids, stream_ids = (list(column) for column in zip(*streams, strict=True))
    await conn.execute(_DELETE_KEYS, business_ids, stream_ids)
    kept = await conn.fetch(_ANSWERS, business_ids, stream_ids)
    if kept:
        await conn.execute(
            _NULL_ANSWERS,
            [row["business_id"] for row in kept],
            [row["key"] for row in kept],
            [nulled_answer(row["body"]) for row in kept],
        )
