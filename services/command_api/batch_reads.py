"""Hop 2's reads for one batch of commands, in one round trip: the events each stream
it addresses has past its cached version (stream_states.py), the ids it needs from
the sequences (as id_sequences.draw() would draw them; id_reserve.py says how many),
and the answers stored for its Idempotency-Keys (idempotency.py). They were three to
four statements, each a round trip paid by every batch, and by every command at
concurrency 1. A batch of postings to cached clients makes none (batch_decider.py).

The one statement answers one row of arrays: a caught-up event is the same index in
each `ev_` array (they come from one aggregation, which feeds every aggregate the
same rows in the same order), and so is a stored answer in each `key_` array. The
ids are drawn even for a command that turns out to be a replay of a stored answer,
which then leaves its ids unused: a gap, as an aborted batch leaves (never a reuse).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from services.command_api.id_reserve import Drawn
from services.command_api.idempotency import StoredResponse, stored_response
from services.command_api.stream_states import StreamStates
from shared.commands import IdCounts
from shared.store.event_rows import WRAPPED

_READ = f"""
SELECT drawn.*, caught.*, stored.*
FROM (
    SELECT array(SELECT nextval('client_id_seq') FROM generate_series(1, $3))
             AS clients,
           array(SELECT nextval('account_id_seq') FROM generate_series(1, $4))
             AS accounts,
           array(SELECT nextval('category_id_seq') FROM generate_series(1, $5))
             AS categories,
           array(SELECT nextval('entry_id_seq') FROM generate_series(1, $6))
             AS entries
) AS drawn, (
    SELECT array_agg(ev.event_id) AS ev_event_id, array_agg(ev.type) AS ev_type,
           array_agg(ev.business_id) AS ev_business_id,
           array_agg(ev.stream_id) AS ev_stream_id,
           array_agg(ev.version) AS ev_version, array_agg(ev.position) AS ev_position,
           array_agg(ev.schema_version) AS ev_schema_version,
           array_agg(ev.recorded_at) AS ev_recorded_at,
           array_agg(ev.metadata::text) AS ev_metadata,
           array_agg(ev.payload::text) AS ev_payload, array_agg(ev.hash) AS ev_hash,
           array_agg(ev.sealed) AS ev_sealed,
           array_agg({WRAPPED.format(events="ev")}) AS ev_wrapped
    FROM unnest($1::text[], $2::integer[]) AS s(stream_id, after_version),
    LATERAL (SELECT * FROM events ev
             WHERE ev.stream_id = s.stream_id AND ev.version > s.after_version
             OFFSET 0) AS ev
) AS caught, (
    SELECT array_agg(k.business_id) AS key_business_id, array_agg(k.key) AS key_key,
           array_agg(k.request_hash) AS key_request_hash,
           array_agg(k.status) AS key_status, array_agg(k.body) AS key_body,
           array_agg(k.position) AS key_position
    FROM unnest($7::bigint[], $8::text[]) AS w(business_id, key),
    LATERAL (SELECT * FROM idempotency_keys k
             WHERE k.business_id = w.business_id AND k.key = w.key OFFSET 0) AS k
) AS stored
"""
# Each join is a LATERAL subquery fenced with OFFSET 0, so that it is an index lookup
# per stream (per key) in every plan. Joined directly, PostgreSQL's generic plan (the
# one it keeps for a prepared statement after five executions, when it costs no more
# than the custom ones did) assumed 10 array elements and hash-joined them with a
# sequential scan of the whole events table: every batch read every event, and the
# API's backend spent 1.9 ms of CPU per posting at concurrency 1 on a 7,600-event
# store, growing with the store (tests/integration/test_generic_plans.py).
# What stream_states.py decodes a caught-up event from (envelope_from_row).
_EVENT_FIELDS = (
    "event_id",
    "type",
    "business_id",
    "stream_id",
    "version",
    "position",
    "schema_version",
    "recorded_at",
    "metadata",
    "payload",
    "hash",
    "sealed",
    "wrapped",
)
Stored = dict[tuple[int, str], StoredResponse]


async def read(
    conn: asyncpg.Connection,
    states: StreamStates,
    stream_ids: set[str],
    counts: IdCounts,
    keys: Sequence[tuple[int, str]],
) -> tuple[Drawn, Stored]:
    """Bring `states` of the streams up to their head, draw the ids `counts` asks
    for and find the answers stored for the (business id, key) pairs, in one query."""
    ordered, after = states.catch_up_from(stream_ids)
    row = await conn.fetchrow(
        _READ,
        ordered,
        after,
        counts.clients,
        counts.accounts,
        counts.categories,
        counts.entries,
        [business_id for business_id, _ in keys],
        [key for _, key in keys],
    )
    states.caught_up(ordered, _events(row))
    drawn = Drawn(row["clients"], row["accounts"], row["categories"], row["entries"])
    return drawn, _stored(row)


def _events(row: asyncpg.Record) -> list[dict[str, object]]:
    """The caught-up events as rows, by stream, then version (the order evolving
    them needs: an aggregate keeps none)."""
    if row["ev_event_id"] is None:  # array_agg of no rows
        return []
    columns = [row["ev_" + field] for field in _EVENT_FIELDS]
    streams, versions = row["ev_stream_id"], row["ev_version"]
    order = sorted(range(len(streams)), key=lambda i: (streams[i], versions[i]))
    return [
        dict(zip(_EVENT_FIELDS, [column[i] for column in columns], strict=True))
        for i in order
    ]


def _stored(row: asyncpg.Record) -> Stored:
    if row["key_key"] is None:
        return {}
    columns = zip(
        row["key_business_id"],
        row["key_key"],
        row["key_request_hash"],
        row["key_status"],
        row["key_body"],
        row["key_position"],
        strict=True,
    )
    return {
        (business_id, key): stored_response(request_hash, status, body, position)
        for business_id, key, request_hash, status, body, position in columns
    }
