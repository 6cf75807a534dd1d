"""What the replica rotation (services/http/replica_rotation.py) knows of one replica,
and the statements it reads and changes the rotation with: on the primary, the
`read_replicas` table (migration 0021) and the WAL insert position; on a replica, its
replay position and whether replay is paused.

Positions are compared as bytes (`pg_lsn - '0/0'`), never by
`pg_last_xact_replay_timestamp()`: a replica that has replayed past an LSN shows every
transaction committed before it, however long ago that was.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import asyncpg

# A replica seen going out is waited for VIEW_MAX from when this process saw it,
# unless the primary says it went out longer ago than VIEW_MAX plus this margin (the
# time between the UPDATE's clock_timestamp() and its commit, generously).
COMMIT_MARGIN_S = 1.0


def replica_name(url: str) -> str:
    """host:port/database: stable, and without the URL's user or password."""
    parts = urlsplit(url)
    database = parts.path.lstrip("/") or "postgres"
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}/{database}"


class Join:
    """This process's claim on a replica's way back (token: its `changed_at`)."""

    __slots__ = ("settle_until", "target", "target_at", "token")

    def __init__(self, token: dt.datetime, settle_until: float) -> None:
        self.token = token
        self.settle_until = settle_until
        self.target: int | None = None
        self.target_at = 0.0


class Replica:
    """One replica as the latest tick saw it."""

    def __init__(
        self, url: str, open_pool: Callable[[str], Awaitable[asyncpg.Pool]]
    ) -> None:
        self.name = replica_name(url)
        self.url = url
        self.pool: asyncpg.Pool | None = None
        self._open_pool = open_pool
        # From the primary's table.
        self.state = "out"
        self.changed_at: dt.datetime | None = None
        self.changed_age_s = 0.0
        # time.monotonic() from which writers need not wait for it while it is out.
        self.released_at = 0.0
        # From its own poll; `failure` from a read that failed on it.
        self.replayed: int | None = None
        self.paused = False
        self.poll_error: str | None = None
        self.failure: str | None = None
        self.join: Join | None = None
        self.reads = 0
        self.fallbacks = 0

    def readable(self) -> bool:
        return (
            self.state == "in"
            and self.pool is not None
            and self.failure is None
            and self.poll_error is None
        )

    def passed(self, target: int, now: float) -> bool:
        """Whether a writer whose commit is at or before `target` may be answered
        as far as this replica goes."""
        if self.state == "out" and now >= self.released_at:
            return True
        return (
            self.poll_error is None
            and self.replayed is not None
            and self.replayed >= target
        )

    def apply_row(
        self, row: asyncpg.Record | None, received: float, view_max_s: float
    ) -> None:
        """The table's row for this replica, read by a tick answered at `received`."""
        if row is None or row["state"] is None:
            state, changed_at, age_s = "out", None, math.inf
        else:
            state, changed_at, age_s = row["state"], row["changed_at"], row["age_s"]
        if state == "out" and changed_at != self.changed_at:
            # Another process's view may show it `in` until VIEW_MAX after the
            # commit, which happened before this read.
            recent = age_s < view_max_s + COMMIT_MARGIN_S
            self.released_at = received + view_max_s if recent else received
        self.state, self.changed_at, self.changed_age_s = state, changed_at, age_s

    def went_out(self, token: dt.datetime | None, released_at: float) -> None:
        """This process set it `out` (committed at `token`, None if it already was)."""
        self.state = "out"
        if token is not None:
            self.changed_at = token
        self.released_at = max(self.released_at, released_at)
        self.join = None
        self.failure = None

    def may_join(self, previous_lsn: int | None, stale_s: float, now: float) -> bool:
        """Out (or left `joining` by a process that died) and caught up with the
        primary's LSN of the previous tick."""
        if self.poll_error or self.failure or self.paused:
            return False
        if self.replayed is None or previous_lsn is None:
            return False
        if self.replayed < previous_lsn:
            return False
        if self.state == "out":
            return now >= self.released_at
        return self.state == "joining" and self.changed_age_s > stale_s

    def start_join(self, token: dt.datetime, settle_until: float) -> None:
        self.state, self.changed_at = "joining", token
        self.join = Join(token, settle_until)

    async def poll(self, timeout_s: float) -> None:
        """Its replay position and pause; any failure is a poll error (taken out)."""
        try:
            async with asyncio.timeout(timeout_s):
                if self.pool is None:
                    self.pool = await self._open_pool(self.url)
                row = await self.pool.fetchrow(_POLL)
        except Exception as error:  # whatever fails, the replica cannot be trusted
            self.replayed, self.poll_error = None, type(error).__name__
            return
        assert row is not None
        if row["replayed"] is None:
            self.replayed, self.poll_error = None, "not a standby"
            return
        self.replayed, self.paused = int(row["replayed"]), bool(row["paused"])
        self.poll_error = None

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None


_POLL = """
SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS replayed,
       pg_is_in_recovery() AND pg_is_wal_replay_paused() AS paused
"""

# The primary's WAL flush position, and each replica's row. Flushed, not inserted: a
# commit is visible only once its commit record is flushed (synchronous_commit on, as
# the service's durability needs), so the flush position sampled now is past every
# commit a waiter saw before this tick began; and a standby is sent flushed WAL only.
# The insert position also counts other transactions' WAL not yet flushed (waiting
# for it added their commit's time to every command), and on an idle primary whose
# last record ended on a page boundary it points past the next page's header, which
# no replay ever reaches until more WAL is written.
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
