"""Read replicas: which hot standby a query may read from, and the wait after each
command that keeps read-your-writes whichever replica serves the next GET, whichever
API process answers it (README "Read replicas").

The rotation lives on the primary, in `read_replicas` (migration 0021): `in` (readers
may use the replica, writers wait for it), `joining` (writers wait, readers do not use
it yet), `out` (neither). Every API process runs one task that samples the primary
(the table and `pg_current_wal_flush_lsn()`, in one statement: replica_table.py)
every LEDGER_REPLICA_POLL_MS and at once when a command starts waiting, and one task
per replica that polls its `pg_last_wal_replay_lsn()` and whether its replay is paused
(replica_polls.py, on a connection of its own) every LEDGER_REPLICA_POLL_MS, and at
once, then every few ms, while a command waits for it. No task waits for another: a
slow or unreachable replica delays its own poll only. The process's *view* is its
latest sample of the table; its age counts from the moment the sample was asked for,
and each replica's poll age from the moment its latest good poll began. VIEW_MAX is
VIEW_POLLS polls.

- A reader uses replica R only if R is `in` in a view younger than VIEW_MAX and R's
  latest good poll is younger than VIEW_MAX (else the primary). A poll in flight
  proves nothing: R is read only on the strength of one that answered.
- A writer, once the projections on the primary show its events, joins the next
  sample: it is asked for after the projections committed, so its flush LSN is past
  their commit. The writer is answered once every replica either has replayed past
  that LSN (a poll showed it, whenever: replay only moves forward, see below) or is
  shown `out`, in a view younger than VIEW_MAX, and has been out for VIEW_MAX (until
  then another process may still hold a view with R `in`). A replica that keeps a
  writer waiting longer than LEDGER_REPLICA_LAG_MAX_MS is set `out` on the primary,
  and the writers waiting for it are answered VIEW_MAX after that commit: every view
  that began before the commit (the only ones that can show R `in`) is too old by
  then to route a read.
- Why that is enough: a GET that follows a POST's answer is routed by a view V2
  younger than VIEW_MAX. If V2 shows R `in`, either the writer waited until R
  replayed its write, or the writer saw R `out` in a view V1 begun less than
  VIEW_MAX before its answer. If R's `in` in V2 came before V1's `out`, V2 began
  before R went out, so it is too old by the time the writer was released. Else R
  came back by a join claimed after V1 began, whose LSN sample is taken VIEW_MAX
  after the claim, so after the writer's answer, and R replayed past it.
- Replay only moves forward, except on a standby restarted after a crash, which may
  reopen behind what it served: its poll connection breaks (a poll error takes R
  out), and a poll that shows replay behind an earlier one takes R out too.
- A replica goes back (replica_joins.py): when R is `out` and its replay has passed a
  primary's LSN sampled a poll or more before (caught up, not paused), one process
  wins the compare-and-set to `joining` (the state and `changed_at` as the token),
  waits VIEW_MAX, samples the primary's LSN, waits until R replays past it (at most
  the lag bound, else `out`) and sets `in`. A process that died mid-join leaves
  `joining`: another takes it over once it is older than JOIN_STALE_S.
- A poll that fails (R stopped, not a standby, unreachable) or a read that fails on R
  with a connection error (services/http/replica_reads.py) takes R out the same way.
  A failing replica is polled with a backoff (replica_polls.BACKOFF_MAX_S at most).

Without LEDGER_READ_DATABASE_URLS none of this exists: no poller, no query, no wait.
Every API process must list the same replicas: one a process does not know, it does
not wait for. Ages are time.monotonic() durations: a system suspend stops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Iterable

import asyncpg

from services.http import replica_table as table
from services.http.replica_joins import advance_join
from services.http.replica_polls import Replica

VIEW_POLLS = 3  # a view is trusted for this many polls (VIEW_MAX)
FAST_POLL_S = 0.0005  # a replica a command waits for: polled again after this,
FAST_POLL_MAX_S = 0.002  # doubling up to this while it has not replayed far enough
log = logging.getLogger(__name__)


class _Waiter:
    """A command waiting for every replica to replay past `target` (set by the first
    sample of the primary asked for after it joined)."""

    __slots__ = ("assigned_at", "future", "target")

    def __init__(self) -> None:
        self.target: int | None = None
        self.assigned_at = 0.0
        self.future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()


class Rotation:
    """The process's view of the rotation, its pollers and its waiting commands."""

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
        self.view_began = -math.inf  # time.monotonic() the latest sample was asked
        self.primary_lsn: int | None = None
        # A sample a poll older than the latest or more: replay past it is caught up
        # enough to join (the latest, ms old under load, replay may never pass).
        self.caught_up_lsn: int | None = None
        self._next: tuple[float, int | None] = (-math.inf, None)
        self.bypasses = 0  # reads sent to the primary: no replica routable
        self._newcomers: list[_Waiter] = []
        self._waiting: list[_Waiter] = []
        self._wake = asyncio.Event()
        self._turn = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await table.register(self.primary, [r.name for r in self.replicas])
        self._tasks = [asyncio.create_task(self._run(), name="replica-rotation")]
        for replica in self.replicas:
            task = asyncio.create_task(self._run_polls(replica), name="replica-poll")
            self._tasks.append(task)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for replica in self.replicas:
            await replica.close()

    def view_fresh(self, now: float) -> bool:
        return now - self.view_began <= self.view_max_s

    def routable(self, replica: Replica) -> bool:
        """Whether a read may go to `replica` now: `in` in a view young enough,
        polled recently enough."""
        now = time.monotonic()
        usable = replica.readable(now, self.view_max_s)
        return usable and self.view_fresh(now)

    def reader_replica(self) -> Replica | None:
        """A replica a read may use now (round robin) with a free connection, or None
        for the primary."""
        usable = [r for r in self.replicas if self.routable(r) and not r.pool_full()]
        if not usable:
            self.bypasses += 1
            return None
        self._turn += 1
        return usable[self._turn % len(usable)]

    def failed(self, replica: Replica, error: BaseException) -> None:
        """A read met a connection error on `replica`: no more reads there; the
        sampler takes it out of the rotation."""
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
        """The primary's sampler: every poll, and at once for new waiters (those that
        come while a sample is in flight join the next one)."""
        failing = False
        while True:
            if not self._newcomers:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await self._wake.wait()
            self._wake.clear()
            try:
                await self._sample()
            except Exception:  # the sampler must outlive any one sample
                # (CancelledError is a BaseException and still ends it)
                if not failing:
                    log.exception("replica rotation: a sample failed; retrying")
                failing = True
                await asyncio.sleep(self.poll_s)
            else:
                failing = False

    async def _sample(self) -> None:
        began = time.monotonic()
        newcomers, self._newcomers = self._newcomers, []
        self._waiting.extend(newcomers)  # before the await: replayed() may time out
        try:
            lsn, rows = await table.read_primary(self.primary, self.replicas)
        except BaseException:
            self._newcomers[:0] = newcomers  # their target is still to be sampled
            self._waiting = [w for w in self._waiting if w not in newcomers]
            raise
        received = time.monotonic()
        self.primary_lsn = lsn
        if received - self._next[0] >= self.poll_s:
            self.caught_up_lsn, self._next = self._next[1], (received, lsn)
        for waiter in newcomers:
            waiter.target, waiter.assigned_at = lsn, received
        for replica in self.replicas:
            replica.apply_row(rows.get(replica.name), received, self.view_max_s)
        self.view_began = began
        await self._take_out_laggards(time.monotonic())
        for replica in self.replicas:
            await advance_join(self.primary, replica, began, lsn, self.view_max_s)
        now = time.monotonic()
        self._answer(now)
        for replica in self.replicas:
            if self._unmet(replica, now):
                replica.wake.set()

    async def _run_polls(self, replica: Replica) -> None:
        """One replica's poller: every poll, at once when a command starts waiting
        for it and quickly while one does, with a backoff while its polls fail."""
        delay_s = 0.0
        while True:
            if delay_s > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay_s):
                        await replica.wake.wait()
            replica.wake.clear()
            await replica.poll(self.lag_max_s, self.caught_up_lsn)
            now = time.monotonic()
            self._answer(now)
            if replica.state != "out" and (replica.failure or replica.poll_error):
                self._wake.set()  # the sampler takes it out
            if replica.poll_error is not None:
                delay_s = replica.backoff_s(self.poll_s)
            elif self._unmet(replica, now):
                fast_s = FAST_POLL_S if delay_s >= self.poll_s else 2 * delay_s
                delay_s = min(max(fast_s, FAST_POLL_S), FAST_POLL_MAX_S)
            else:
                delay_s = self.poll_s

    def _unmet(self, replica: Replica, now: float) -> bool:
        """Whether a command waits for this replica's replay."""
        if replica.state == "out":
            return False
        fresh = self.view_fresh(now)
        return any(
            w.target is not None and not replica.passed(w.target, now, fresh)
            for w in self._waiting
        )

    def _answer(self, now: float) -> None:
        fresh = self.view_fresh(now)
        for waiter in list(self._waiting):
            target = waiter.target
            if target is not None and all(
                r.passed(target, now, fresh) for r in self.replicas
            ):
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
            token = await table.set_state(self.primary, replica, "out")
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
            and not replica.passed(w.target, now, self.view_fresh(now))
            for w in self._waiting
        )
