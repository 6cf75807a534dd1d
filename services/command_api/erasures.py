"""Hop 3 for an erasure: what its transaction writes besides its client.erased event.

The client's key is deleted (client_keys, migration 0015), so every sealed field of
its stream becomes unreadable at once, in this database and in any backup taken from
now on; and the answers kept for its Idempotency-Keys get their personal fields
nulled (`personal_fields_nulled`, migration 0016), keeping their key and status, so
a retry still replays without applying twice. Both in the transaction of the event
(services/command_api/commit.py), after the batch's own answers are stored: an
answer stored by the same batch is nulled too.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from shared import events as e
from shared.store.new_events import NewEvent

_ERASE = """
WITH erased AS (SELECT * FROM unnest($1::bigint[], $2::text[])
                         AS x(business_id, stream_id)),
     gone AS (DELETE FROM client_keys k USING erased
              WHERE k.business_id = erased.business_id
                AND k.stream_id = erased.stream_id)
UPDATE idempotency_keys i SET body = personal_fields_nulled(i.body)
FROM erased
WHERE i.business_id = erased.business_id AND i.stream_id = erased.stream_id
"""


def erased_streams(events: Sequence[NewEvent]) -> list[tuple[int, str]]:
    """(business id, stream id) of each client the events erase."""
    return [
        (event.business_id, event.stream_id)
        for event in events
        if isinstance(event.payload, e.ClientErased)
    ]


async def erase(conn: asyncpg.Connection, streams: Sequence[tuple[int, str]]) -> None:
    """Destroy the clients' keys and null their kept answers' personal fields."""
    if not streams:
        return
    business_ids, stream_ids = zip(*streams, strict=True)
    await conn.execute(_ERASE, list(business_ids), list(stream_ids))
