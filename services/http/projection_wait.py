"""Read-your-writes: wait until the projections have applied a stream version.

Projectors NOTIFY `ledger_projected` when a batch commits, with their projection's
name and the `stream:version` of each stream the batch applied (projections/
applied_notice.py). One listening connection per process (services/bootstrap.
read_your_writes_listener, served by services/http/listen_connection.py) receives
them and keeps the versions heard (the latest FACTS_MAX streams): a waiter whose
version every projection has been heard to apply is answered at once, without a
query, even one that comes after its notifications.

A check by query (projections/progress.py) costs a round trip, made only when the
notifications may not answer the waiter. A command takes a mark() before it is
submitted; its events commit after the mark, and every projection applies them later
still and then notifies. A waiter is checked only once every projection has notified
since its mark ("ripe", below) and one of those notifications did not list all it
applied (a list cut short, a projector of an earlier version that sends its name
alone, a lost connection). A position this process committed (a query's minimum
position, a replay's) waits with its command's mark; any other waiter without a mark
(an import) is checked at every wake. Should notifications stop (the connection is
lost: every waiter is made ripe then, and again when it listens anew), the checker
checks every waiter on a short timer, and at least every FULL_CHECK_S regardless, so
a missed notification only delays, never hangs.

The checker is a process edge: any failure of a check (a lost connection, a pool
busy past its acquire timeout) is logged once per streak and retried on the next
tick. Were the task to die, every later command would answer 202 after the full
read-your-writes wait until the process restarted.

The same connection keeps the API-key cache (services/http/api_key_cache.py) honest:
`ledger_api_keys` notifications drop it; it is trusted only while the connection
listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from projections import progress
from projections.applied_notice import LIST, MORE
from projections.registry import PROJECTIONS
from services.http.api_key_cache import ApiKeyCache
from services.http.listen_connection import ListenConnection

POLL_S = 0.05
FULL_CHECK_S = 1.0
FACTS_MAX = 20_000  # streams whose applied versions are kept (about 4 MB at most)
log = logging.getLogger(__name__)


class _Waiter:
    """One request waiting: for `version`, notified since `mark` (None: no mark)."""

    __slots__ = ("future", "mark", "version")

    def __init__(self, version: int, mark: int | None) -> None:
        self.version = version
        self.mark = mark
        self.future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()


class ProjectionWaiter:
    """Answers "has every projection applied this?" (projections/progress.py) for the
    requests waiting, on the API's pool; `listener` is the process's LISTEN connection,
    which the waiter uses between start() and stop() and its opener closes. With
    `reopen` (the bootstrap's opener) a lost listener is replaced by a new one."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        listener: asyncpg.Connection,
        reopen: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
    ) -> None:
        self._pool = pool
        self._listening = ListenConnection(listener, reopen)
        self.api_keys = ApiKeyCache()
        self._waiting: dict[str, list[_Waiter]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Notifications so far, and the count at each projection's latest one.
        self._notified = 0
        self._heard = dict.fromkeys(PROJECTIONS, 0)
        # Per stream, the version each projection was heard to apply (the latest
        # FACTS_MAX streams), and the count at the latest notification that did not
        # list everything its batch applied.
        self._applied: dict[str, dict[str, int]] = {}
        self._incomplete = 0
        # The stream, version and mark of positions this process committed (the
        # latest FACTS_MAX): a wait for one is its command's own wait.
        self._committed: OrderedDict[int, tuple[str, int, int]] = OrderedDict()

    async def start(self) -> None:
        self._listening.listen("ledger_projected", self._on_notify)
        self._listening.listen("ledger_api_keys", self.api_keys.revoke_all)
        self._listening.on_change(self._on_listening)
        await self._listening.start()
        self._task = asyncio.create_task(self._run(), name="projection-waiter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._listening.stop()

    def committed(self, position: int, stream_id: str, version: int, mark: int) -> None:
        """What a command of this process, marked `mark`, committed at `position`
        (its answer's X-Ledger-Position, which a caller may wait for on a query)."""
        self._committed[position] = (stream_id, version, mark)
        while len(self._committed) > FACTS_MAX:
            self._committed.popitem(last=False)

    def mark(self) -> int:
        """Taken before a command is submitted, and given to wait_for_stream."""
        return self._notified

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        name, listed, applied = payload.partition(LIST)
        self._notified += 1
        # A name not in this process's registry counts for every projection.
        for projection in [name] if name in self._heard else list(self._heard):
            self._heard[projection] = self._notified
        items = applied.split(" ") if applied else []
        if not listed or name not in self._heard or MORE in items:
            self._incomplete = self._notified  # what it applied is not all listed
        if name in self._heard:
            self._note_applied(name, items)
        self._wake.set()

    def _note_applied(self, projection: str, items: list[str]) -> None:
        """Keep a notification's `stream:version` list (projections/
        applied_notice.py): versions the projection has applied and committed (a NOTIFY
        is delivered only at COMMIT), so they stay true. The waiters they satisfy are
        answered at once; a waiter that comes later finds them here (the latest
        FACTS_MAX streams are kept)."""
        for item in items:
            stream_id, _, version_text = item.rpartition(":")
            if not version_text.isdigit():
                continue
            versions = self._applied.pop(stream_id, None) or {}
            self._applied[stream_id] = versions  # the most recent last
            versions[projection] = max(versions.get(projection, 0), int(version_text))
            waiters = self._waiting.get(stream_id)
            if waiters:
                self._answer_heard(stream_id, waiters)
        while len(self._applied) > FACTS_MAX:
            del self._applied[next(iter(self._applied))]
            # A waiter may have lost a fact it was half answered by: check by query.
            self._incomplete = self._notified

    def _answer_heard(self, stream_id: str, waiters: list[_Waiter]) -> None:
        versions = self._applied.get(stream_id)
        if versions is None or len(versions) < len(self._heard):
            return
        version_applied = min(versions.values())
        for waiter in waiters:
            if waiter.version <= version_applied:
                _answer(waiter.future, True)

    def _on_listening(self, conn: asyncpg.Connection | None) -> None:
        """Notifications may have been missed: every waiter is ripe again."""
        if conn is None:
            self.api_keys.distrust()
        else:
            self.api_keys.trust(conn)
        self._notified += 1
        self._incomplete = self._notified
        self._heard = dict.fromkeys(self._heard, self._notified)
        self._wake.set()

    def _heard_all(self) -> int:
        """The count at which every projection had notified at least once more."""
        return min(self._heard.values(), default=self._notified)

    async def wait_for_stream(
        self, stream_id: str, version: int, timeout_s: float, mark: int | None = None
    ) -> bool:
        """True once every projection applied `version` of the stream, else False.
        `mark` (mark(), taken before the events were committed) spares the checks
        that cannot succeed yet."""
        waiter = _Waiter(version, mark)
        waiters = self._waiting.setdefault(stream_id, [])
        waiters.append(waiter)
        self._answer_heard(stream_id, [waiter])
        if not waiter.future.done() and self._worth_a_check(waiter, self._heard_all()):
            self._wake.set()
        # A timer answers False unless a check answered True first: no task, no
        # shield, per waiter.
        expiry = asyncio.get_running_loop().call_later(
            timeout_s, _answer, waiter.future, False
        )
        try:
            return await waiter.future
        finally:
            expiry.cancel()
            self._discard(stream_id, waiter)

    async def wait_for_position(self, position: int, timeout_s: float) -> bool:
        """True once the event at `position` (or else the checkpoints) is applied."""
        if position in self._committed:
            stream_id, version, mark = self._committed[position]
            return await self.wait_for_stream(stream_id, version, timeout_s, mark)
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

    def _discard(self, stream_id: str, waiter: _Waiter) -> None:
        waiters = self._waiting.get(stream_id, [])
        waiters[:] = [other for other in waiters if other is not waiter]
        if not waiters:
            self._waiting.pop(stream_id, None)

    async def _run(self) -> None:
        failing = False
        loop = asyncio.get_running_loop()
        checked_all_at = loop.time()
        while True:
            woken = False
            # asyncio.timeout, not wait_for: under Python 3.11 wait_for returns an
            # inner wait that completed as the task was cancelled and swallows the
            # cancellation, and stop() then waited for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    woken = await self._wake.wait()
            self._wake.clear()
            if not self._waiting:
                continue
            everyone = not woken or loop.time() - checked_all_at >= FULL_CHECK_S
            streams = self._streams(everyone)
            if not streams:
                continue
            if everyone:
                checked_all_at = loop.time()
            try:
                await self._check(streams)
            except Exception:  # the loop must outlive any one check (CancelledError
                # is a BaseException and still ends it)
                if not failing:
                    log.exception("read-your-writes check failed; retrying")
                failing = True
                await asyncio.sleep(POLL_S)
            else:
                failing = False

    def _streams(self, everyone: bool) -> list[str]:
        """The streams worth a check: every waiting one, or those with a ripe waiter."""
        heard_all = self._heard_all()
        return [
            stream_id
            for stream_id, waiters in self._waiting.items()
            if any(
                not waiter.future.done()
                and (everyone or self._worth_a_check(waiter, heard_all))
                for waiter in waiters
            )
        ]

    def _worth_a_check(self, waiter: _Waiter, heard_all: int) -> bool:
        """Whether a check by query may answer the waiter before the notifications
        do: only once every projection has notified since its mark, and only if one
        of those notifications did not list all it applied (a waiter without a mark
        always is)."""
        if waiter.mark is None:
            return True
        return _ripe(waiter, heard_all) and self._incomplete > waiter.mark

    async def _check(self, stream_ids: list[str]) -> None:
        applied = await progress.streams_applied(self._pool, stream_ids)
        for stream_id, version_applied in applied.items():
            for waiter in self._waiting.get(stream_id, []):
                if waiter.version <= version_applied:
                    _answer(waiter.future, True)


def _answer(future: asyncio.Future[bool], visible: bool) -> None:
    if not future.done():
        future.set_result(visible)


def _ripe(waiter: _Waiter, heard_all: int) -> bool:
    """Whether every projection has notified since the waiter's mark (one without a
    mark always is)."""
    return waiter.mark is None or heard_all > waiter.mark


WAITER = web.AppKey("projection_waiter", ProjectionWaiter)
