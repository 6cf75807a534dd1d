"""How far the read models have got: the one answer, read from the database.

Hop 5 records its progress in the transaction that changes a read model
(projections/runner.py): per projection, the last version applied of each stream
(projection_tracking) and the position every event up to has been applied
(projection_checkpoint, projections/checkpoints.py). This module reads them back. The
read models are as far as the projection furthest behind, so each answer is the lowest
over every projection of the registry, and a projection without a row has applied
nothing yet.

Asked by the read-your-writes waiter (services/http/projection_wait.py), the position a
query answer reflects (services/query_api/queries.read_position), an import's status
(services/query_api/import_status.py), /readyz (services/http/health.py) and /metrics
(services/http/metrics.py). /metrics also shows the hop before: the relay's backlog,
the committed events it has not published yet.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec

from projections.batch_statement import shifted
from projections.registry import PROJECTIONS

RELAY = "main"  # the relay's cursor name (services/outbox_relay)
# /readyz and /metrics answer within this even when PostgreSQL is slow.
TIMEOUT_S = 2.0

# Per stream asked, the version every projection has applied (a stream that some
# projection has not tracked yet has no row).
_STREAMS_APPLIED = """
SELECT stream_id, min(version) AS version
FROM projection_tracking
WHERE projection = ANY($1::text[]) AND stream_id = ANY($2::text[])
GROUP BY stream_id
HAVING count(*) = $3
"""
_POSITION_APPLIED = """
SELECT CASE WHEN count(*) = $2 THEN min(position_last) END
FROM projection_checkpoint WHERE projection = ANY($1::text[])
"""


def position_applied_sql(after: int) -> str:
    """_POSITION_APPLIED as a scalar subquery of a statement with `after` parameters
    of its own before it (position_applied_args() are its two)."""
    return shifted(_POSITION_APPLIED, after)


def position_applied_args() -> tuple[list[str], int]:
    names = _names()
    return names, len(names)


_EVENT_AT = "SELECT stream_id, version FROM events WHERE position = $1"

_RELAY_BACKLOG = """
SELECT count(*) AS events,
       coalesce(extract(epoch FROM clock_timestamp() - min(recorded_at)), 0)::float8
         AS seconds
FROM events
WHERE position > coalesce((SELECT position FROM relay_cursor WHERE relay = $1), 0)
"""

_PROJECTION_LAG = """
SELECT p.projection,
       count(e.position) AS events,
       coalesce(extract(epoch FROM clock_timestamp() - min(e.recorded_at)), 0)::float8
         AS seconds
FROM unnest($1::text[]) AS p(projection)
LEFT JOIN projection_checkpoint c USING (projection)
LEFT JOIN events e ON e.position > coalesce(c.position_last, 0)
GROUP BY p.projection
ORDER BY p.projection
"""

# With partitions, each one's checkpoint row (`balances.0`, ...: projections/
# checkpoints.py), which the relay's frame after every batch moves whether or not the
# batch had events of the partition: its positions behind the store's head, and the age
# of the first event past it. Index probes only (cheap at any backlog).
_PARTITION_LAGS = """
SELECT split_part(c.projection, '.', 1) AS projection,
       split_part(c.projection, '.', 2)::int AS partition,
       greatest(h.head - c.position_last, 0) AS positions,
       coalesce(extract(epoch FROM clock_timestamp() - (
           SELECT e.recorded_at FROM events e WHERE e.position > c.position_last
           ORDER BY e.position LIMIT 1)), 0)::float8 AS seconds
FROM projection_checkpoint c,
     (SELECT coalesce(max(position), 0) AS head FROM events) AS h
WHERE split_part(c.projection, '.', 1) = ANY($1::text[])
  AND c.projection ~ '[.][0-9]+$'
ORDER BY 1, 2
"""

# The lag of the projection furthest behind, in seconds only: one index probe, cheap
# enough for /readyz at every probe even with a backlog of millions of events.
_LAG_MAX = """
SELECT extract(epoch FROM clock_timestamp() - recorded_at)::float8
FROM events
WHERE position > (
    SELECT coalesce(min(coalesce(c.position_last, 0)), 0)
    FROM unnest($1::text[]) AS p(projection)
    LEFT JOIN projection_checkpoint c USING (projection)
)
ORDER BY position LIMIT 1
"""

_PARKED = """
SELECT p.projection, count(k.event_id) AS events
FROM unnest($1::text[]) AS p(projection)
LEFT JOIN projection_parked k USING (projection)
GROUP BY p.projection
"""


def _names() -> list[str]:
    return list(PROJECTIONS)


async def streams_applied(
    pool: asyncpg.Pool, stream_ids: Sequence[str]
) -> dict[str, int]:
    """For each of the streams, the version every projection has applied (a stream
    some projection has applied nothing of is left out)."""
    names = _names()
    rows = await pool.fetch(_STREAMS_APPLIED, names, list(stream_ids), len(names))
    return {row["stream_id"]: row["version"] for row in rows}


async def stream_applied(pool: asyncpg.Pool, stream_id: str, version: int) -> bool:
    """Whether every projection has applied `version` of the stream."""
    applied = await streams_applied(pool, [stream_id])
    return applied.get(stream_id, 0) >= version


async def position_applied(pool: asyncpg.Pool) -> int | None:
    """The position every projection has applied every event up to (their lowest
    checkpoint); None while some projection has no checkpoint yet."""
    position: int | None = await pool.fetchval(
        _POSITION_APPLIED, *position_applied_args()
    )
    return position


async def event_at(pool: asyncpg.Pool, position: int) -> tuple[str, int] | None:
    """The stream and version of the event at `position`; None when no event has it
    (not yet committed, or never: positions have gaps)."""
    row = await pool.fetchrow(_EVENT_AT, position)
    return None if row is None else (row["stream_id"], row["version"])


class Lag(msgspec.Struct, frozen=True):
    """Events not yet published (or applied), and the age of the oldest, 0 if none."""

    events: int
    seconds: float


async def relay_backlog(pool: asyncpg.Pool, relay: str = RELAY) -> Lag:
    """The committed events past the relay's cursor, in its own (transaction,
    position) order."""
    row = await pool.fetchrow(_RELAY_BACKLOG, relay, timeout=TIMEOUT_S)
    return Lag(events=row["events"], seconds=row["seconds"])


async def projection_lags(pool: asyncpg.Pool) -> dict[str, Lag]:
    """Each projection's events past its checkpoint (counted: /metrics reads them at
    most every few seconds)."""
    rows = await pool.fetch(_PROJECTION_LAG, _names(), timeout=TIMEOUT_S)
    return {
        row["projection"]: Lag(events=row["events"], seconds=row["seconds"])
        for row in rows
    }


class PartitionLag(msgspec.Struct, frozen=True):
    projection: str
    partition: int
    positions: int  # positions between the partition's checkpoint and the head
    seconds: float


async def partition_lags(pool: asyncpg.Pool) -> list[PartitionLag]:
    """Each partition's lag, by projection (none with one partition: the
    projection's own row is its only checkpoint, and projection_lags has it)."""
    rows = await pool.fetch(_PARTITION_LAGS, _names(), timeout=TIMEOUT_S)
    return [
        PartitionLag(
            row["projection"], row["partition"], row["positions"], row["seconds"]
        )
        for row in rows
    ]


async def lag_max_seconds(pool: asyncpg.Pool) -> float:
    """The age of the oldest event some projection has not applied (0 if none)."""
    lag = await pool.fetchval(_LAG_MAX, _names(), timeout=TIMEOUT_S)
    return float(lag or 0.0)


async def parked_events(pool: asyncpg.Pool) -> dict[str, int]:
    """Each projection's parked events (projection_parked: projections/runner.park)."""
    rows = await pool.fetch(_PARKED, _names(), timeout=TIMEOUT_S)
    return {row["projection"]: row["events"] for row in rows}
