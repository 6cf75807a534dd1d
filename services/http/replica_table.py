"""The statements the replica rotation (services/http/replica_rotation.py) runs on the
primary: its sample (the WAL flush position and each replica's row of
`read_replicas`, migration 0021), and the compare-and-set that changes a row."""

from __future__ import annotations

import datetime as dt

import asyncpg

from services.http.replica_polls import Replica

# The primary's WAL flush position, and each replica's row. Flushed, not inserted: a
# commit is visible only once its commit record is flushed (synchronous_commit on:
# services/bootstrap.py sets it on every pool whose commits make read models
# visible), so the flush position sampled now is past every commit a waiter saw
# before the sample was asked for; and a standby is sent flushed WAL only. The insert
# position also counts other transactions' WAL not yet flushed (waiting for it added
# their commit's time to every command), and on an idle primary whose last record
# ended on a page boundary it points past the next page's header, which no replay
# ever reaches until more WAL is written.
_PRIMARY = """
SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint AS lsn, n.name, r.state,
       r.changed_at,
       extract(epoch FROM clock_timestamp() - r.changed_at)::float8 AS age_s
FROM unnest($1::text[]) AS n(name) LEFT JOIN read_replicas r ON r.name = n.name
"""


async def read_primary(
    pool: asyncpg.Pool, replicas: list[Replica]
) -> tuple[int, dict[str, asyncpg.Record]]:
    rows = await pool.fetch(_PRIMARY, [replica.name for replica in replicas])
    return max(int(row["lsn"]) for row in rows), {row["name"]: row for row in rows}


async def register(pool: asyncpg.Pool, names: list[str]) -> None:
    """A replica not yet in the table starts `out`: it joins by the protocol."""
    await pool.execute(
        "INSERT INTO read_replicas (name) SELECT unnest($1::text[])"
        " ON CONFLICT (name) DO NOTHING",
        names,
    )


# Compare and set: with a token, only the row changed at `token` (and still in the
# state this process saw) changes; without one, any row not already in `state`.
_SET_STATE = """
UPDATE read_replicas SET state = $2, changed_at = clock_timestamp()
WHERE name = $1 AND CASE WHEN $3::timestamptz IS NULL THEN state <> $2
                         ELSE changed_at = $3 AND state = $4 END
RETURNING changed_at
"""


async def set_state(
    pool: asyncpg.Pool,
    replica: Replica,
    state: str,
    token: dt.datetime | None = None,
) -> dt.datetime | None:
    """The new `changed_at` if this changed the row, else None."""
    changed: dt.datetime | None = await pool.fetchval(
        _SET_STATE, replica.name, state, token, replica.state
    )
    return changed
