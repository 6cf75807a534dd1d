"""Read-your-writes: wait until the projections have applied a stream version.

Projectors NOTIFY `ledger_projected` when a batch commits. One listening connection per
process (services/bootstrap.read_your_writes_listener) wakes a checker, which resolves
every waiter in one query (projections/progress.py); while waiters exist it also
checks on a short timer, so a missed notification only delays, never hangs.
The checker is a process edge: any failure of a check (a lost connection, an API
pool busy past its acquire timeout: PoolExhausted) is logged once per streak and
retried on the next tick. Were the task to die, every later command would answer 202
after the full read-your-writes wait until the process restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from aiohttp import web

from projections import progress

POLL_S = 0.05
log = logging.getLogger(__name__)


class ProjectionWaiter:
    """Answers "has every projection applied this?" (projections/progress.py) for the
    requests waiting, on the API's pool; `listener` is the process's LISTEN connection,
    which the waiter uses between start() and stop() and its opener closes."""

    def __init__(self, pool: asyncpg.Pool, listener: asyncpg.Connection) -> None:
        self._pool = pool
        self._listener = listener
        self._waiting: dict[str, list[tuple[int, asyncio.Future[None]]]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._listener.add_listener("ledger_projected", self._on_notify)
        self._task = asyncio.create_task(self._run(), name="projection-waiter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def wait_for_stream(
        self, stream_id: str, version: int, timeout_s: float
    ) -> bool:
        """True once every projection applied `version` of the stream, else False."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(stream_id, []).append((version, future))
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self._discard(stream_id, future)

    async def wait_for_position(self, position: int, timeout_s: float) -> bool:
        """True once the event at `position` (or else the checkpoints) is applied."""
        event = await progress.event_at(self._pool, position)
        if event is not None:
            stream_id, version = event
            return await self.wait_for_stream(stream_id, version, timeout_s)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            reached = await progress.position_applied(self._pool)
            if reached is not None and reached >= position:
                return True
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(POLL_S)

    def _discard(self, stream_id: str, future: asyncio.Future[None]) -> None:
        waiters = self._waiting.get(stream_id, [])
        waiters[:] = [(v, f) for v, f in waiters if f is not future]
        if not waiters:
            self._waiting.pop(stream_id, None)

    async def _run(self) -> None:
        failing = False
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)
            self._wake.clear()
            if not self._waiting:
                continue
            try:
                await self._check()
            except Exception:  # the loop must outlive any one check (CancelledError
                # is a BaseException and still ends it)
                if not failing:
                    log.exception("read-your-writes check failed; retrying")
                failing = True
                await asyncio.sleep(POLL_S)
            else:
                failing = False

    async def _check(self) -> None:
        applied = await progress.streams_applied(self._pool, list(self._waiting))
        for stream_id, version_applied in applied.items():
            for version, future in self._waiting.get(stream_id, []):
                if version <= version_applied and not future.done():
                    future.set_result(None)


WAITER = web.AppKey("projection_waiter", ProjectionWaiter)
