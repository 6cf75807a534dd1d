"""What the replica rotation (services/http/replica_rotation.py) knows of one replica,
and the statements it reads and changes the rotation with: on the primary, the
`read_replicas` table (migration 0021) and the WAL flush position; on a replica, its
replay position and whether replay is paused.

Positions are compared as bytes (`pg_lsn - '0/0'`), never by
`pg_last_xact_replay_timestamp()`: a replica that has replayed past an LSN shows every
transaction committed before it, however long ago that was.

Each replica is polled on a connection of its own (never one of its read pool: four
long reads there, exports or aging, would make the poll wait and fail, and the
replica flap out of rotation), opened again after any failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import asyncpg

# A replica seen going out is waited for VIEW_MAX from when this process saw it,
# unless the primary says it went out longer ago than VIEW_MAX plus this margin (the
# time between the UPDATE's clock_timestamp() and its commit, generously).
COMMIT_MARGIN_S = 1.0
# A replica whose polls fail is polled again after poll_s, then twice that, and so on
# up to this: an unreachable host costs a connection attempt every few seconds.
BACKOFF_MAX_S = 5.0

Opener = Callable[[str], Awaitable[asyncpg.Pool]]
Connector = Callable[[str], Awaitable[asyncpg.Connection]]


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
    """One replica: its row in the primary's table as this process last read it, and
    its own latest poll."""

    def __init__(
        self, url: str, open_pool: Opener, connect: Connector, fold_url: str
    ) -> None:
        self.name = replica_name(url)
        self.url = url
        self.fold_url = fold_url  # a fold worker's connection (with the timeouts)
        self.pool: asyncpg.Pool | None = None
        self._open_pool = open_pool
        self._connect = connect
        self._conn: asyncpg.Connection | None = None  # the poll's own
        self.wake = asyncio.Event()  # poll at once (a command waits for it)
        # From the primary's table.
        self.state = "out"
        self.changed_at: dt.datetime | None = None
        self.changed_age_s = 0.0
        # time.monotonic() from which writers need not wait for it while it is out.
        self.released_at = 0.0
        # From its own poll; `failure` from a read that failed on it.
        self.replayed: int | None = None
        self.replayed_max: int | None = None  # the furthest any poll showed
        self.polled_at = -math.inf  # time.monotonic() the latest good poll began
        self.caught_up = False  # replayed past the primary's sample before the poll
        self.failures = 0  # polls failed in a row
        self.paused = False
        self.poll_error: str | None = None
        self.failure: str | None = None
        self.join: Join | None = None
        self.reads = 0
        self.fallbacks = 0

    def readable(self, now: float, fresh_s: float) -> bool:
        """In, with a pool, and polled well within `fresh_s`."""
        return (
            self.state == "in"
            and self.pool is not None
            and self.failure is None
            and self.poll_error is None
            and now - self.polled_at <= fresh_s
        )

    def pool_full(self) -> bool:
        """Every connection of its pool busy: a read there would wait for one (long
        reads may hold them all) while the primary can answer at once."""
        pool = self.pool
        return pool is not None and (
            pool.get_idle_size() == 0 and pool.get_size() >= pool.get_max_size()
        )

    def passed(self, target: int, now: float, view_fresh: bool) -> bool:
        """Whether a writer whose commit is at or before `target` may be answered
        as far as this replica goes. `out` counts only in a view young enough: an
        older one may not show a join another process began since."""
        if self.state == "out" and view_fresh and now >= self.released_at:
            return True
        return (
            self.poll_error is None
            and self.replayed is not None
            and self.replayed >= target
        )

    def apply_row(
        self, row: asyncpg.Record | None, received: float, view_max_s: float
    ) -> None:
        """The table's row for this replica, read by a sample answered at `received`."""
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

    def may_join(self, stale_s: float, now: float) -> bool:
        """Out (or left `joining` by a process that died) and caught up with the
        primary's LSN sampled before its latest poll began."""
        if self.poll_error or self.failure or self.paused or not self.caught_up:
            return False
        if self.state == "out":
            return now >= self.released_at
        return self.state == "joining" and self.changed_age_s > stale_s

    def start_join(self, token: dt.datetime, settle_until: float) -> None:
        self.state, self.changed_at = "joining", token
        self.join = Join(token, settle_until)

    def observe(
        self, replayed: int | None, paused: bool, began: float, primary_lsn: int | None
    ) -> None:
        """A poll that began at `began` (the primary's latest sample then:
        `primary_lsn`) answered; `replayed` None: the server is not a standby. Replay
        that went back behind what an earlier poll saw (a standby restarted after a
        crash may reopen behind what it served) takes the replica out."""
        if replayed is None:
            self.replayed, self.poll_error = None, "not a standby"
            self.failures += 1
            return
        if self.replayed_max is not None and replayed < self.replayed_max:
            if self.state != "out":
                self.failure = "replay went backwards"
            self.replayed_max = replayed  # out now: judged afresh from here
        self.replayed, self.paused, self.polled_at = replayed, paused, began
        self.replayed_max = max(replayed, self.replayed_max or replayed)
        self.caught_up = primary_lsn is not None and replayed >= primary_lsn
        self.poll_error, self.failures = None, 0

    def failed_poll(self, error: BaseException) -> None:
        self.replayed, self.poll_error = None, type(error).__name__
        self.caught_up = False
        self.failures += 1

    def backoff_s(self, poll_s: float) -> float:
        """How long to wait before the next poll while polls fail."""
        return min(poll_s * 2.0 ** max(0, self.failures - 1), BACKOFF_MAX_S)

    async def poll(self, timeout_s: float, primary_lsn: int | None) -> None:
        """Its replay position and pause, on its poll connection (and its read pool
        opened once it answers); any failure is a poll error (taken out)."""
        began = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                if self._conn is None or self._conn.is_closed():
                    self._conn = await self._connect(self.url)
                row = await self._conn.fetchrow(_POLL)
                if self.pool is None:
                    self.pool = await self._open_pool(self.url)
        except Exception as error:  # whatever fails, the replica cannot be trusted
            await self._drop_connection()
            self.failed_poll(error)
            return
        assert row is not None
        replayed = None if row["replayed"] is None else int(row["replayed"])
        self.observe(replayed, bool(row["paused"]), began, primary_lsn)

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()  # no goodbye: the server may not answer

    async def close(self) -> None:
        await self._drop_connection()
        if self.pool is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.pool.close()
            self.pool = None


_POLL = """
SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS replayed,
       pg_is_in_recovery() AND pg_is_wal_replay_paused() AS paused
"""
