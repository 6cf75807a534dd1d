"""Hop 2: the appender. Group commit of concurrent commands.

Routes submit commands and await their own result. One task per process gathers the
commands waiting, brings each stream's state up to its head once, decides every
command in arrival order (a command on a stream sees the commands before it in the
batch), and appends the survivors' events in one transaction: one fsync for the whole
batch. A refused command produces no events and never fails another. If another
process wrote a stream first (ConcurrencyConflict), the whole batch is decided again
from the fresh heads, a bounded number of times, before anyone sees a 409.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import uuid
from collections.abc import Callable, Iterable

import asyncpg
import msgspec

from services.command_api import batch_io
from services.command_api.stream_states import StreamStates
from services.command_api.submissions import (
    Decided,
    IdempotencyClaim,
    Outcome,
    Render,
    Result,
    Submission,
)
from shared import commands as c
from shared import domain, pause_points
from shared import events as e
from shared.clock import Clock
from shared.errors import (
    CommitFailed,
    CommitUnconfirmed,
    ConcurrencyConflict,
    IdempotencyConflict,
    LedgerError,
    PoolExhausted,
    ServiceStopping,
)
from shared.store.event_store import NewEvent, append, new_event
from shared.store.postgres import CONNECTION_ERRORS

log = logging.getLogger(__name__)
RETRIES_MAX = 8
# How long stop() lets the submitted commands finish before it cancels the task.
STOP_GRACE_S = 10.0
# After a COMMIT whose reply was lost, how often and how long apart the server is asked
# whether the transaction is still in progress (about 5 s in all) before the callers
# are told the outcome is unknown.
SETTLE_ATTEMPTS = 50
SETTLE_PAUSE_S = 0.1


class Appender:
    def __init__(
        self,
        pool: asyncpg.Pool,
        hmac_key: bytes,
        batch_size_max: int,
        on_appended: Callable[[Iterable[str]], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._pool = pool
        self._clock = clock or Clock()
        self._on_appended = on_appended  # the types of each committed batch's events
        self._stopping = False
        self._key = hmac_key
        self._batch_size_max = batch_size_max
        self._queue: asyncio.Queue[Submission] = asyncio.Queue()
        self._states = StreamStates()
        self._task: asyncio.Task[None] | None = None

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
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(0)  # let the requests already in flight join
            while len(batch) < self._batch_size_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit_isolated(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit_isolated(self, batch: list[Submission]) -> None:
        """Commit a batch; if it fails unexpectedly, commit each command on its own so
        that one poisonous command fails alone and never its batch-mates. Splitting is
        safe because a failed batch is known not to have committed (see _write)."""
        try:
            await self._commit_with_retries(batch)
        except CommitOutcomeUnknown as unknown:
            log.warning("commit outcome unknown: %r", unknown.cause)
            for submission in batch:  # re-deciding could post twice: 503 for all
                _fail(submission, CommitUnconfirmed())
        except PoolExhausted as busy:  # nothing was tried: splitting would wait again
            for submission in batch:
                _fail(submission, busy)
        except Exception as error:  # a process edge: no caller may hang
            if len(batch) > 1:
                log.warning("batch of %d failed; committing one by one", len(batch))
                for submission in batch:
                    await self._commit_isolated([submission])
                return
            log.exception("command %s failed", type(batch[0].command).__name__)
            _fail(batch[0], error)

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
        _fail(batch[0], ConcurrencyConflict("retries exhausted"))

    async def _commit(self, batch: list[Submission]) -> None:
        batch = [submission for submission in batch if not submission.future.done()]
        async with self._pool.acquire() as conn:
            live = await self._settle_replays(conn, batch)
            if not live:
                return
            touched = batch_io.streams_of(s.command for s in live)
            self._states.take_put()
            try:
                decided, refused = await self._decide_all(conn, live)
                results = await self._write(conn, decided)
            except BaseException:
                # States were evolved, and new streams cached, for events that were
                # never written: drop them all, so nothing is decided on a phantom.
                self._states.forget(touched | self._states.take_put())
                raise
        if self._on_appended is not None:
            self._on_appended(
                e.event_type(event.payload)
                for item in decided
                for event in item.new_events
            )
        for submission, error in refused:
            _fail(submission, error)
        for item, result in zip(decided, results, strict=True):
            if not item.submission.future.done():
                item.submission.future.set_result(result)

    async def _settle_replays(
        self, conn: asyncpg.Connection, batch: list[Submission]
    ) -> list[Submission]:
        """Answer the submissions whose Idempotency-Key already committed."""
        stored = await batch_io.stored_responses(conn, batch)
        live: list[Submission] = []
        for submission in batch:
            claim = submission.idempotency
            found = (
                stored.get((submission.command.business_id, claim.key))
                if claim
                else None
            )
            if found is None:
                live.append(submission)
            elif claim is not None and found.request_hash != claim.request_hash:
                _fail(submission, IdempotencyConflict())
            else:
                submission.future.set_result(found.result)
        return live

    async def _decide_all(
        self, conn: asyncpg.Connection, batch: list[Submission]
    ) -> tuple[list[Decided], list[tuple[Submission, LedgerError]]]:
        await self._states.load(conn, batch_io.streams_of(s.command for s in batch))
        await self._states.load(conn, batch_io.category_streams(batch, self._states))
        ids = await batch_io.allocate_ids(conn, [s.command for s in batch])
        taken = await batch_io.taken_names(conn, [s.command for s in batch])
        defaults = await batch_io.default_categories(conn, [s.command for s in batch])
        await self._states.load(
            conn, {e.category_stream(category_id) for category_id in defaults.values()}
        )
        decided: list[Decided] = []
        refused: list[tuple[Submission, LedgerError]] = []
        # One reading per attempt: it is every event's recorded_at and, through
        # commands.stamped(), the date of postings without one and of reversals.
        now = self._clock.now()
        for submission, new_ids in zip(batch, ids, strict=True):
            try:
                decided.append(self._decide(submission, new_ids, taken, defaults, now))
            except LedgerError as error:
                refused.append((submission, error))
        return decided, refused

    def _decide(
        self,
        submission: Submission,
        ids: c.NewIds,
        taken: set[tuple[int, str]],
        defaults: dict[int, int],
        now: dt.datetime,
    ) -> Decided:
        command = c.stamped(submission.command, now.date())
        if isinstance(command, c.CreateCategory):
            return self._decide_category(submission, command, ids, taken, now)
        state: domain.ClientState | None = None
        if isinstance(command, c.CreateClient):
            category_id = command.category_id or defaults.get(command.business_id, 0)
            payloads = domain.decide_create_client(
                command, ids, self._category(category_id)
            )
            stream_id = e.client_stream(ids.client_id)
        else:
            stream_id = e.client_stream(command.client_id)
            cached = self._states.get(stream_id)
            state = cached if isinstance(cached, domain.ClientState) else None
            target = getattr(command, "category_id", msgspec.UNSET)
            category = self._category(target) if isinstance(target, int) else None
            payloads = domain.decide_client(command, state, ids, category)
        new_events = self._chain(submission, stream_id, state, payloads, now)
        for event in new_events:
            state = domain.evolve_client(state, event.stored(0))
        assert state is not None
        self._states.put(stream_id, state)
        # The cached state is evolved in place by the next command on this stream in
        # the same batch, and outcomes are rendered only after the whole batch is
        # written: each outcome keeps its own copy, the state right after its command.
        outcome = Outcome(
            events=[],
            client=_snapshot(state),
            category=self._category(state.category_id),
        )
        return Decided(submission=submission, new_events=new_events, outcome=outcome)

    def _decide_category(
        self,
        submission: Submission,
        command: c.CreateCategory,
        ids: c.NewIds,
        taken: set[tuple[int, str]],
        now: dt.datetime,
    ) -> Decided:
        name_key = batch_io.name_key(command.name)
        payloads = domain.decide_create_category(
            command, ids, (command.business_id, name_key) in taken
        )
        taken.add((command.business_id, name_key))
        stream_id = e.category_stream(ids.category_id)
        new_events = self._chain(submission, stream_id, None, payloads, now)
        category = domain.evolve_category(None, new_events[0].stored(0))
        self._states.put(stream_id, category)
        return Decided(
            submission=submission,
            new_events=new_events,
            outcome=Outcome(events=[], category=category),
            name_key=name_key,
        )

    def _category(self, category_id: int) -> domain.CategoryState | None:
        found = self._states.get(e.category_stream(category_id))
        return found if isinstance(found, domain.CategoryState) else None

    def _chain(
        self,
        submission: Submission,
        stream_id: str,
        state: domain.ClientState | None,
        payloads: list[e.LedgerEvent],
        now: dt.datetime,
    ) -> list[NewEvent]:
        version = state.version if state else 0
        previous = state.last_hash if state else batch_io.GENESIS
        chained: list[NewEvent] = []
        for offset, payload in enumerate(payloads, start=1):
            event = new_event(
                key=self._key,
                previous_hash=previous,
                business_id=submission.command.business_id,
                stream_id=stream_id,
                version=version + offset,
                recorded_at=now,
                metadata=submission.metadata,
                payload=payload,
            )
            chained.append(event)
            previous = event.hash
        return chained

    async def _write(
        self, conn: asyncpg.Connection, decided: list[Decided]
    ) -> list[Result]:
        """Append every decided command's events in one transaction.

        A connection lost once the events were inserted, or any error raised by the
        COMMIT itself, leaves the outcome unknown (COMMIT may have been applied
        without its reply arriving, or may still be being applied by a backend whose
        client is gone); the server is then asked what became of the transaction
        (`_settled`), so that a committed batch is never decided and written a
        second time, and a batch still committing is never retried beside itself."""
        results: list[Result] = []
        transaction_id: str | None = None
        committing = False
        try:
            async with conn.transaction():
                transaction_id = await conn.fetchval(
                    "SELECT pg_current_xact_id()::text"
                )
                await batch_io.claim_names(conn, decided)
                stored = await append(
                    conn, [ev for item in decided for ev in item.new_events]
                )
                by_id = {event.event_id: event for event in stored}
                results = [self._result(item, by_id) for item in decided]
                await batch_io.store_responses(conn, decided, results)
                if stored:
                    await conn.execute("SELECT pg_notify('ledger_events', '')")
                await pause_points.pause("api.before_commit")  # test-only, inert
                committing = True  # what fails from here on is the COMMIT itself
            await pause_points.pause("api.after_commit")  # test-only, inert
        except Exception as error:
            if not (committing or isinstance(error, CONNECTION_ERRORS)):
                raise
            if transaction_id is None:  # lost before anything was written
                raise
            if await self._settled(transaction_id, error):
                return results
            if isinstance(error, CONNECTION_ERRORS):
                raise  # aborted for certain: the batch may be split and retried
            raise CommitFailed() from error
        return results

    async def _settled(self, transaction_id: str, cause: Exception) -> bool:
        """Whether the transaction committed (True) or aborted (False), asked of the
        server on another connection with `pg_xact_status`. A backend whose client
        vanished goes on with a COMMIT it received, so "in progress" is asked again
        for a while; still undecided, or the server unreachable, raises
        CommitOutcomeUnknown (503 for every caller, nothing retried). Counting the
        events instead would take "not there yet" for "never": the split batch
        would then be written a second time once the first COMMIT landed."""
        for _ in range(SETTLE_ATTEMPTS):
            try:
                status = await self._pool.fetchval(
                    "SELECT pg_xact_status($1::text::xid8)", transaction_id
                )
            except Exception as error:  # the outcome cannot be learned now
                raise CommitOutcomeUnknown(error) from error
            if status in ("committed", "aborted"):
                return bool(status == "committed")
            await asyncio.sleep(SETTLE_PAUSE_S)
        raise CommitOutcomeUnknown(cause)

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


def _snapshot(state: domain.ClientState) -> domain.ClientState:
    """A copy of a client state that later in-place evolves cannot change. The
    posting-by-id maps are shared, not copied: no renderer reads them."""
    return msgspec.structs.replace(
        state,
        balance_by_date=dict(state.balance_by_date),
        deposit_by_date=dict(state.deposit_by_date),
    )


class CommitOutcomeUnknown(Exception):
    """The batch's COMMIT may or may not have been applied, and the store could not be
    asked: every caller gets CommitUnconfirmed (a 503, whatever the store's error
    was), and nothing is retried."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _fail(submission: Submission, error: BaseException) -> None:
    if not submission.future.done():
        submission.future.set_exception(error)
