"""Read replicas: which hot standby a query may read from, and the wait after each
command that keeps read-your-writes whichever replica serves the next GET, whichever
API process answers it (README "Read replicas").

The rotation lives on the primary, in `read_replicas` (migration 0021): `in` (readers
may use the replica, writers wait for it), `joining` (writers wait, readers do not use
it yet), `out` (neither). Every API process has one poller (this module) that, every
LEDGER_REPLICA_POLL_MS and at once again while commands wait, reads in one statement
on the primary the table and `pg_current_wal_flush_lsn()`, then each replica's
`pg_last_wal_replay_lsn()` and whether its replay is paused. What one tick read is
the process's *view*; its age counts from the moment the tick *began*. VIEW_MAX is
VIEW_POLLS polls.

- A reader uses replica R only if R is `in` in a view younger than VIEW_MAX (else the
  primary).
- A writer, once the projections on the primary show its events, joins the next
  tick: that tick began after the projections committed, so its LSN sample is past
  their commit. The writer is answered once every replica that tick (or a later one)
  shows `in` or `joining` has replayed past that LSN, and every replica shown `out`
  has been out for VIEW_MAX (until then another process may still hold a view with
  R `in`). A replica that keeps a writer waiting longer than LEDGER_REPLICA_LAG_MAX_MS
  is set `out` on the primary, and the writers waiting for it are answered VIEW_MAX
  after that commit: every view that began before the commit (the only ones that
  can show R `in`) is too old by then to route a read.
- Why that is enough: a GET that follows a POST's answer is routed by a view younger
  than VIEW_MAX. If it shows R `in`, either the writer waited until R replayed its
  write, or R was out when the writer looked and went back only by the join below,
  whose LSN sample is past the write.
- A replica goes back: when R is `out` and its replay has passed the primary's LSN of
  the previous tick (caught up, not paused), one process wins the compare-and-set to
  `joining` (the state and `changed_at` as the token), waits VIEW_MAX, samples the
  primary's LSN, waits until R replays past it (at most the lag bound, else `out`)
  and sets `in`. A process that died mid-join leaves `joining`: another takes it over
  once it is older than JOIN_STALE_S.
- A poll that fails (R stopped, not a standby, unreachable) or a read that fails on R
  with a connection error (services/http/replica_reads.py) takes R out the same way.

Without LEDGER_READ_DATABASE_URLS none of this exists: no poller, no query, no wait.
Replica pools are separate from the primary's (LEDGER_REPLICA_POOL_SIZE_MAX each).
Every API process must list the same replicas: one a process does not know, it does
not wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Iterable

import asyncpg

from services.http import replica_polls as polls
from services.http.replica_polls import Replica

VIEW_POLLS = 3  # a view is trusted for this many polls (VIEW_MAX)
FAST_POLL_S = 0.002  # between ticks while commands wait
JOIN_STALE_S = 10.0  # a `joining` older than this (a process died mid-join) is taken
log = logging.getLogger(__name__)


class _Waiter:
    """A command waiting: for every replica to replay past `target` (set by the
    first tick that began after it joined)."""

    __slots__ = ("assigned_at", "future", "target")

    def __init__(self) -> None:
        self.target: int | None = None
        self.assigned_at = 0.0
        self.future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()


class Rotation:
    """The process's view of the rotation, its poller and its waiting commands."""

    def __init__(
        self,
        primary: asyncpg.Pool,
        replicas: Iterable[Replica],
        poll_s: float,
        lag_max_s: float,
    ) -> None:
        self.primary = primary
        self.replicas = list(replicas)
        self.poll_s = poll_s
        self.lag_max_s = lag_max_s
        self.view_max_s = VIEW_POLLS * poll_s
        self.view_began = -math.inf  # time.monotonic() the latest good tick began
        self.primary_lsn: int | None = None
        self._newcomers: list[_Waiter] = []
        self._waiting: list[_Waiter] = []
        self._wake = asyncio.Event()
        self._turn = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await polls.register(self.primary, [r.name for r in self.replicas])
        self._task = asyncio.create_task(self._run(), name="replica-rotation")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for replica in self.replicas:
            await replica.close()

    def routable(self, replica: Replica) -> bool:
        """Whether a read may go to `replica` now: `in` in a view young enough."""
        age_s = time.monotonic() - self.view_began
        return age_s <= self.view_max_s and replica.readable()

    def reader_replica(self) -> Replica | None:
        """A replica a read may use now (round robin), or None for the primary."""
        usable = [r for r in self.replicas if self.routable(r)]
        if not usable:
            return None
        self._turn += 1
        return usable[self._turn % len(usable)]

    def failed(self, replica: Replica, error: BaseException) -> None:
        """A read met a connection error on `replica`: no more reads there; the
        poller takes it out of the rotation."""
        replica.failure = type(error).__name__
        self._wake.set()

    async def replayed(self, timeout_s: float) -> bool:
        """Called once the projections show a command's events: True once every
        replica a reader could use has them too, False after `timeout_s`."""
        waiter = _Waiter()
        self._newcomers.append(waiter)
        self._wake.set()
        try:
            async with asyncio.timeout(timeout_s):
                return await waiter.future
        except TimeoutError:
            return False
        finally:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            if waiter in self._newcomers:
                self._newcomers.remove(waiter)

    async def _run(self) -> None:
        failing = False
        while True:
            if self._newcomers or self._waiting:
                await asyncio.sleep(FAST_POLL_S)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await self._wake.wait()
            self._wake.clear()
            try:
                await self._tick()
            except Exception:  # the poller must outlive any one tick (CancelledError
                # is a BaseException and still ends it)
                if not failing:
                    log.exception("replica rotation: a tick failed; retrying")
                failing = True
                await asyncio.sleep(self.poll_s)
            else:
                failing = False

    async def _tick(self) -> None:
        began = time.monotonic()
        newcomers, self._newcomers = self._newcomers, []
        self._waiting.extend(newcomers)  # before the await: replayed() may time out
        try:
            lsn, rows = await polls.read_primary(self.primary, self.replicas)
        except BaseException:
            self._newcomers[:0] = newcomers  # their target is still to be sampled
            self._waiting = [w for w in self._waiting if w not in newcomers]
            raise
        received = time.monotonic()
        previous_lsn, self.primary_lsn = self.primary_lsn, lsn
        for waiter in newcomers:
            waiter.target, waiter.assigned_at = lsn, received
        for replica in self.replicas:
            replica.apply_row(rows.get(replica.name), received, self.view_max_s)
        await asyncio.gather(*(r.poll(self.lag_max_s) for r in self.replicas))
        self.view_began = began
        await self._take_out_laggards(time.monotonic())
        self._answer(time.monotonic())
        for replica in self.replicas:
            await self._advance_join(replica, previous_lsn, began, lsn)

    def _answer(self, now: float) -> None:
        for waiter in list(self._waiting):
            target = waiter.target
            if target is not None and all(r.passed(target, now) for r in self.replicas):
                self._waiting.remove(waiter)
                if not waiter.future.done():
                    waiter.future.set_result(True)

    async def _take_out_laggards(self, now: float) -> None:
        """Out with a replica that failed, or that keeps a writer (or its own join)
        waiting past the lag bound; its waiters go VIEW_MAX after the commit."""
        for replica in self.replicas:
            if replica.state == "out":
                replica.failure = None
                continue
            reason = replica.failure or replica.poll_error
            if reason is None and self._lagging(replica, now):
                reason = f"lag over {self.lag_max_s * 1000:.0f} ms"
            if reason is None:
                continue
            token = await polls.set_state(self.primary, replica, "out")
            after = time.monotonic()
            replica.went_out(token, after + self.view_max_s)
            log.warning(
                "replica %s taken out of rotation: %s",
                replica.name,
                reason,
                extra={"event": "replica.out", "replica": replica.name},
            )

    def _lagging(self, replica: Replica, now: float) -> bool:
        late = now - self.lag_max_s
        join = replica.join
        if join is not None and join.target is not None and join.target_at < late:
            return True
        return any(
            w.target is not None
            and w.assigned_at < late
            and not replica.passed(w.target, now)
            for w in self._waiting
        )

    async def _advance_join(
        self, replica: Replica, previous_lsn: int | None, began: float, lsn: int
    ) -> None:
        """One step of the way back in: claim `joining`, settle VIEW_MAX, sample
        the LSN, then `in` once the replica has replayed past it."""
        join = replica.join
        if join is None:
            now = time.monotonic()
            if replica.may_join(previous_lsn, JOIN_STALE_S, now):
                await self._claim_join(replica)
            return
        if replica.state != "joining" or replica.changed_at != join.token:
            replica.join = None  # someone else changed it
        elif join.target is None:
            if began >= join.settle_until:
                join.target, join.target_at = lsn, time.monotonic()
        elif replica.replayed is not None and replica.replayed >= join.target:
            token = await polls.set_state(self.primary, replica, "in", join.token)
            if token is not None:
                replica.state, replica.changed_at = "in", token
                log.info(
                    "replica %s back in rotation",
                    replica.name,
                    extra={"event": "replica.in", "replica": replica.name},
                )
            replica.join = None

    async def _claim_join(self, replica: Replica) -> None:
        token = await polls.set_state(
            self.primary, replica, "joining", replica.changed_at
        )
        if token is not None:
            settle_until = time.monotonic() + self.view_max_s
            replica.start_join(token, settle_until)


def lag_bytes(rotation: Rotation, replica: Replica) -> int | None:
    """How far the replica's replay is behind the primary's last sampled LSN."""
    if rotation.primary_lsn is None or replica.replayed is None:
        return None
    return max(0, rotation.primary_lsn - replica.replayed)
