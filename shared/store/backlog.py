"""How far behind the relay and each projection are, read from the database.

The relay's backlog is the committed events past its cursor in its own order
(transaction, position); a projection's lag is the events past its checkpoint. Both
are counted in events and in seconds: the age of the oldest event not yet published,
or not yet applied (0 when caught up). /metrics (services/http/metrics.py) reads every
figure at each scrape; /readyz (services/http/health.py) reads only the largest lag in
seconds, with one index probe instead of counting.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec

RELAY = "main"  # the relay's cursor name (services/outbox_relay)

_RELAY_BACKLOG = """
SELECT count(*) AS events,
       coalesce(extract(epoch FROM clock_timestamp() - min(recorded_at)), 0)::float8
         AS seconds
FROM events
WHERE (transaction_id, position) > (
    SELECT coalesce(c.transaction_id, '0'::xid8), coalesce(c.position, 0)
    FROM (SELECT 1) AS one LEFT JOIN relay_cursor c ON c.relay = $1
)
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


class Lag(msgspec.Struct, frozen=True):
    events: int
    seconds: float


async def relay_backlog(
    pool: asyncpg.Pool, relay: str = RELAY, timeout_s: float = 2.0
) -> Lag:
    row = await pool.fetchrow(_RELAY_BACKLOG, relay, timeout=timeout_s)
    return Lag(events=row["events"], seconds=row["seconds"])


async def projection_lags(
    pool: asyncpg.Pool, projections: Sequence[str], timeout_s: float = 2.0
) -> dict[str, Lag]:
    rows = await pool.fetch(_PROJECTION_LAG, list(projections), timeout=timeout_s)
    return {
        row["projection"]: Lag(events=row["events"], seconds=row["seconds"])
        for row in rows
    }


async def lag_max_seconds(
    pool: asyncpg.Pool, projections: Sequence[str], timeout_s: float = 2.0
) -> float:
    """The age of the oldest event some projection has not applied (0 if none)."""
    lag = await pool.fetchval(_LAG_MAX, list(projections), timeout=timeout_s)
    return float(lag or 0.0)


async def parked_events(
    pool: asyncpg.Pool, projections: Sequence[str], timeout_s: float = 2.0
) -> dict[str, int]:
    rows = await pool.fetch(_PARKED, list(projections), timeout=timeout_s)
    return {row["projection"]: row["events"] for row in rows}
