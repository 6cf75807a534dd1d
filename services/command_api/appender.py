"""Hop 2: the appender. Group commit of concurrent commands.

Routes submit commands and await their own result. One task per process takes the
commands waiting (group_window.py), brings each stream's state up to its head once
(postings to cached clients read nothing: batch_decider.py), decides every command
in arrival order (a command sees the ones before it in the batch), and appends the
survivors' events in one transaction: one fsync per batch. A refused command writes
nothing and fails no other. If another process wrote a stream first
(ConcurrencyConflict), the batch is decided again from the fresh heads, a bounded
number of times, before anyone sees a 409; a batch decided on cached states alone is
decided again at once after a read, its streams read first from then on (contested).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Iterable

import asyncpg

from services.command_api.batch_decider import BatchDecider, Reads
from services.command_api.commit import CommitOutcomeUnknown, Write, commit
from services.command_api.erasures import erased_streams
from services.command_api.group_window import Last, Window, next_batch
from services.command_api.idempotency import Answer, settle_replays
from services.command_api.stream_states import streams_of
from services.command_api.submissions import (
    Decided,
    IdempotencyClaim,
    Render,
    Result,
    Submission,
)
from shared import commands as c
from shared import events as e
from shared.clock import Clock
from shared.errors import (
    CommitUnconfirmed,
    ConcurrencyConflict,
    LedgerError,
    PoolExhausted,
    ServiceStopping,
)
from shared.personal_data import MasterKey, derived_master_key

log = logging.getLogger(__name__)
RETRIES_MAX = 8
# How long stop() lets the submitted commands finish before it cancels the task.
STOP_GRACE_S = 10.0


class Appender:
    def __init__(
        self,
        pool: asyncpg.Pool,
        hmac_key: bytes,
        batch_size_max: int,
        on_appended: Callable[[Iterable[str]], None] | None = None,
        clock: Clock | None = None,
        window: Window | None = None,
        master: MasterKey | None = None,
    ) -> None:
        """`master` wraps new clients' keys: by default the one derived from
        `hmac_key` (shared/personal_data.py)."""
        self._pool = pool
        self._clock = clock or Clock()
        self._on_appended = on_appended  # the types of each committed batch's events
        self._stopping = False
        self._batch_size_max = batch_size_max
        self._window = window or Window()
        self._queue: asyncio.Queue[Submission] = asyncio.Queue()
        master = master or derived_master_key(hmac_key.decode())
        self._decider = BatchDecider(hmac_key, master, self._clock)
        self._task: asyncio.Task[None] | None = None
        self._gathering: list[Submission] = []  # the batch being gathered

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="appender")

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Refuse new commands, let every command already submitted be committed (or
        refused) and answered, then end the task. A batch is never cut off mid-commit
        unless it outlasts `grace_s` (then, as after a crash, its outcome is what the
        database decided: committed entirely or not at all)."""
        self._stopping = True
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), grace_s)
        except TimeoutError:
            log.warning("appender: commands still running after %.0f s", grace_s)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        # What was never taken up, or was being gathered, was not written: refused.
        unanswered, self._gathering = self._gathering, []
        while not self._queue.empty():
            unanswered.append(self._queue.get_nowait())
        for submission in unanswered:
            submission.fail(ServiceStopping())
            self._queue.task_done()

    async def submit(
        self,
        command: c.LedgerCommand,
        metadata: e.Metadata,
        render: Render,
        idempotency: IdempotencyClaim | None = None,
    ) -> Result:
        if self._stopping:
            raise ServiceStopping()
        submission = Submission(command, metadata, render, idempotency)
        await self._queue.put(submission)
        return await submission.future

    async def _run(self) -> None:
        last = Last()
        while True:
            self._gathering = []
            await next_batch(
                self._queue, self._batch_size_max, self._window, last, self._gathering
            )
            batch, self._gathering = self._gathering, []
            try:
                await self._commit_isolated(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit_isolated(self, batch: list[Submission]) -> None:
        """Commit a batch; if it fails unexpectedly, commit each command on its own so
        that one poisonous command fails alone and never its batch-mates. Splitting is
        safe because a failed batch is known not to have committed (see commit.py)."""
        try:
            await self._commit_with_retries(batch)
        except CommitOutcomeUnknown as unknown:
            log.warning("commit outcome unknown: %r", unknown.cause)
            for submission in batch:  # re-deciding could post twice: 503 for all
                submission.fail(CommitUnconfirmed())
        except PoolExhausted as busy:  # nothing was tried: splitting would wait again
            for submission in batch:
                submission.fail(busy)
        except Exception as error:  # a process edge: no caller may hang
            if len(batch) > 1:
                log.warning("batch of %d failed; committing one by one", len(batch))
                for submission in batch:
                    await self._commit_isolated([submission])
                return
            log.exception("command %s failed", type(batch[0].command).__name__)
            batch[0].fail(error)

    async def _commit_with_retries(self, batch: list[Submission]) -> None:
        for attempt in range(RETRIES_MAX):
            try:
                await self._commit(batch)
                return
            except ConcurrencyConflict as conflict:
                log.info("batch conflict, attempt %d: %s", attempt + 1, conflict.detail)
                await asyncio.sleep(random.uniform(0.001, 0.005) * (attempt + 1))
        if len(batch) > 1:  # give each command its own retries: only losers see 409
            for submission in batch:
                await self._commit_with_retries([submission])
            return
        batch[0].fail(ConcurrencyConflict("retries exhausted"))

    async def _commit(self, batch: list[Submission], cached: bool = True) -> None:
        batch = [submission for submission in batch if not submission.future.done()]
        try:
            written = await self._decide_and_write(batch, cached)
        except _StaleCache as stale:
            # Decided on a cached state another process had moved past (or was
            # moving past): decided again at once after a read. No attempt is
            # counted and nobody pauses.
            log.info("batch conflict on cached states: %s", stale.__cause__)
            await self._commit(batch, cached=False)
            return
        if written is None:
            return
        reads, decided, refused, results = written
        if self._on_appended is not None:
            self._on_appended(
                e.event_type(event.payload)
                for item in decided
                for event in item.new_events
            )
        for item, result in zip(decided, results, strict=True):
            if not item.submission.future.done():
                item.submission.future.set_result(result)
        if refused and not reads.verified:
            refused = await self._confirm(refused, decided)
        for submission, error in refused:
            submission.fail(error)

    async def _decide_and_write(
        self, batch: list[Submission], cached: bool
    ) -> _Written | None:
        """Read what deciding needs (nothing, for postings to cached clients), decide,
        and write; None when every command replayed a stored answer."""
        keys = [
            (submission.command.business_id, submission.idempotency.key)
            for submission in batch
            if submission.idempotency is not None
        ]
        async with self._pool.acquire() as conn:
            reads = await self._decider.read(conn, batch, keys, cached)
            live = settle_replays(batch, reads.stored)
            if not live:
                return None
            try:
                decided, refused = await self._decider.decide(conn, live, reads)
                results = await self._write(conn, decided)
            except BaseException as error:
                # States were evolved, and new streams cached, for events that were
                # never written: drop them all, so nothing is decided on a phantom.
                stale = isinstance(error, ConcurrencyConflict) and not reads.verified
                self._decider.forget(live, contested=stale)
                if stale:
                    raise _StaleCache() from error
                raise
        return reads, decided, refused, results

    async def _confirm(
        self, refused: list[tuple[Submission, LedgerError]], decided: list[Decided]
    ) -> list[tuple[Submission, LedgerError]]:
        """Refusals decided on cached states alone (batch_decider.py) stand only if
        their stream had not moved on: the others are decided again after a read.
        A stream the batch wrote was at its head (its write proves it), and so were
        its refusals. The accepted commands are answered before this, so nothing
        here can make their batch be committed a second time."""
        written = {event.stream_id for item in decided for event in item.new_events}
        unproven = [item for item, _ in refused if streams_of([item.command]) - written]
        if not unproven:
            return refused
        async with self._pool.acquire() as conn:
            moved = await self._decider.moved(conn, unproven)
        if moved:
            await self._commit(moved, cached=False)
        again = {id(submission) for submission in moved}
        return [(item, error) for item, error in refused if id(item) not in again]

    async def _write(
        self, conn: asyncpg.Connection, decided: list[Decided]
    ) -> list[Result]:
        """Append every decided command's events in one transaction (commit.py),
        each command's answer rendered from its stored events."""

        def answer(stored: list[e.Envelope]) -> list[Answer]:
            by_id = {event.event_id: event for event in stored}
            return [
                Answer(
                    item.submission.command.business_id,
                    item.submission.idempotency,
                    self._result(item, by_id),
                    *item.answer_client(),
                )
                for item in decided
            ]

        events = [event for item in decided for event in item.new_events]
        write = Write(
            events=events,
            names=[item.name for item in decided if item.name is not None],
            answer=answer,
            keyed=any(item.submission.idempotency is not None for item in decided),
            erases=erased_streams(events),
        )
        committed = await commit(conn, self._pool, write)
        return [answer.result for answer in committed.answers]

    def _result(self, item: Decided, by_id: dict[uuid.UUID, e.Envelope]) -> Result:
        events = [by_id[event.event_id] for event in item.new_events]
        item.outcome.events = events
        status, body = item.submission.render(item.outcome)
        last = events[-1] if events else None
        return Result(
            status=status,
            body=body,
            position=last.position if last else None,
            stream_id=last.stream_id if last else None,
            version=last.version if last else None,
        )


class _StaleCache(Exception):
    """A batch decided on cached states alone conflicted with another writer."""


Refusals = list[tuple[Submission, LedgerError]]
_Written = tuple[Reads, list[Decided], Refusals, list[Result]]
