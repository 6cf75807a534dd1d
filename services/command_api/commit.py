"""Hop 3's transaction: the one way events are committed, for the appender's batches
and for imports alike.

BEGIN; the writer's own check (an import's duplicate-file check under its lock); claim
the new category names; append the events (which also returns the transaction id);
the writer's own record (an import's client_imports row); store the Idempotency-Key
answers; COMMIT. Appending takes the commit-order lock (migration 0011: positions are
drawn in commit order), held to the COMMIT, and sends the relay its NOTIFY (0013): so
the names are claimed before it, and every writer holds it only for its own writes.
An erasure's keys are destroyed last, after the answers are stored (erasures.py).

A write of events alone (no name to claim, no check, no record, no Idempotency-Key
answer to store: the plain postings) needs no transaction block: its INSERT is sent
as one statement, its own transaction, one round trip instead of three (BEGIN,
INSERT, COMMIT).

A COMMIT whose reply is lost, or a connection lost once rows were written, leaves the
outcome unknown: the server is then asked (`settled`, `settled_alone`) rather than
guessed, so that a committed write is never answered as failed and written a second
time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
import msgspec

from services.command_api import category_names, erasures, idempotency
from services.command_api.category_names import NameClaim
from services.command_api.idempotency import Answer
from shared import events as e
from shared import pause_points
from shared.errors import CommitFailed
from shared.store.event_store import append_returning
from shared.store.new_events import CopyRows, NewEvent
from shared.store.postgres import CONNECTION_ERRORS

# After a COMMIT whose reply was lost, how often and how long apart the server is asked
# whether the transaction is still in progress (about 5 s in all) before the callers
# are told the outcome is unknown.
SETTLE_ATTEMPTS = 50
SETTLE_PAUSE_S = 0.1


class Write(msgspec.Struct, kw_only=True, frozen=True):
    """What one transaction writes. `answer` renders the answers from the stored
    events (their positions are known only then); `check` and `record` are a
    writer's own statements, the first before anything is written."""

    events: Sequence[NewEvent] | CopyRows
    names: Sequence[NameClaim] = ()
    answer: Callable[[list[e.Envelope]], list[Answer]]
    keyed: bool = True  # whether an answer carries an Idempotency-Key to store
    # The clients the events erase: their keys go in the same transaction.
    erases: Sequence[tuple[int, str]] = ()
    check: Callable[[asyncpg.Connection], Awaitable[None]] | None = None
    record: Callable[[asyncpg.Connection, list[e.Envelope]], Awaitable[None]] | None = (
        None
    )


class Committed(msgspec.Struct, frozen=True):
    stored: list[e.Envelope]  # append()'s answer: every event, or a COPY's last
    answers: list[Answer]


async def commit(
    conn: asyncpg.Connection, pool: asyncpg.Pool, write: Write
) -> Committed:
    """Write it all in one transaction on `conn` (a pooled connection; `pool` asks
    after a lost COMMIT). Raises what failed when nothing was committed, for the
    writer to retry or answer; CommitOutcomeUnknown when nobody can tell."""
    if _alone(write):
        return await _commit_alone(conn, pool, write)
    transaction_id: str | None = None
    committing = False
    committed = Committed([], [])
    try:
        async with conn.transaction():
            if write.check is not None:
                await write.check(conn)
            await category_names.claim(conn, write.names)
            appended = await append_returning(conn, write.events)
            stored, transaction_id = appended.stored, appended.transaction_id
            if write.record is not None:
                await write.record(conn, stored)
            committed = Committed(stored, write.answer(stored))
            await idempotency.store_responses(conn, committed.answers)
            await erasures.erase(conn, write.erases)
            if transaction_id is None and committed.answers:  # answers, no events
                transaction_id = await conn.fetchval(
                    "SELECT pg_current_xact_id()::text"
                )
            await pause_points.pause("api.before_commit")  # test-only, inert
            committing = True  # what fails from here on is the COMMIT itself
        await pause_points.pause("api.after_commit")  # test-only, inert
    except Exception as error:
        if not (committing or isinstance(error, CONNECTION_ERRORS)):
            raise
        if transaction_id is None:  # lost before any event was written
            raise
        if await settled(pool, transaction_id, error):
            return committed
        if isinstance(error, CONNECTION_ERRORS):
            raise  # aborted for certain: the writer may retry
        raise CommitFailed() from error
    return committed


# Errors after which the statement may have committed: a lost connection, and the
# server's operator interventions (class 57: a crash of another backend ends this
# one at any moment, after its commit record was flushed too).
_UNSETTLED = (*CONNECTION_ERRORS, asyncpg.OperatorInterventionError)


def _alone(write: Write) -> bool:
    """Whether the write is its INSERT alone (a test holding a transaction open at
    api.before_commit needs one)."""
    return (
        not isinstance(write.events, CopyRows)
        and bool(write.events)
        and not (write.names or write.keyed or write.erases)
        and write.check is None
        and write.record is None
        and not pause_points.armed("api.before_commit")
    )


async def _commit_alone(
    conn: asyncpg.Connection, pool: asyncpg.Pool, write: Write
) -> Committed:
    """The INSERT as one statement outside a transaction block: committed when it
    returns. A connection lost meanwhile is settled by asking after its backend."""
    assert not isinstance(write.events, CopyRows)
    backend = conn.get_server_pid()
    try:
        stored = (await append_returning(conn, write.events)).stored
    except _UNSETTLED as error:  # other errors: the statement failed, whole
        stored = await settled_alone(pool, backend, write.events, error)
    await pause_points.pause("api.after_commit")  # test-only, inert
    return Committed(stored, write.answer(stored))


async def settled_alone(
    pool: asyncpg.Pool, backend: int, events: Sequence[NewEvent], cause: Exception
) -> list[e.Envelope]:
    """The events as stored, if the statement that lost its connection committed;
    raises `cause` if it did not (the writer may retry), CommitOutcomeUnknown if
    nobody can tell. Its backend is asked after first (pg_stat_activity): while it
    is active (waiting for the commit-order lock, say), or its state is not shown,
    the statement may still commit. Once it is idle or gone its outcome is final,
    and a later statement, with a snapshot taken after that, looks for the events
    (one statement would take its snapshot before reading the activity, and could
    miss a commit made in between)."""
    ids = [event.event_id for event in events]
    for _ in range(SETTLE_ATTEMPTS):
        try:
            active = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE pid = $1 AND state IS DISTINCT FROM 'idle'",
                backend,
            )
            if not active:
                rows = await pool.fetch(
                    "SELECT event_id, position FROM events WHERE event_id = ANY($1)",
                    ids,
                )
                break
        except Exception as error:  # the outcome cannot be learned now
            raise CommitOutcomeUnknown(error) from error
        await asyncio.sleep(SETTLE_PAUSE_S)
    else:
        raise CommitOutcomeUnknown(cause)
    if not rows:
        raise cause
    positions = {row["event_id"]: row["position"] for row in rows}
    return [event.stored(positions[event.event_id]) for event in events]


async def settled(pool: asyncpg.Pool, transaction_id: str, cause: Exception) -> bool:
    """Whether the transaction committed (True) or aborted (False), asked of the
    server on another connection with `pg_xact_status`. A backend whose client
    vanished goes on with a COMMIT it received, so "in progress" is asked again
    for a while; still undecided, or the server unreachable, raises
    CommitOutcomeUnknown (503 for every caller, nothing retried). Counting the
    events instead would take "not there yet" for "never": a retried write would
    then be written a second time once the first COMMIT landed."""
    for _ in range(SETTLE_ATTEMPTS):
        try:
            status = await pool.fetchval(
                "SELECT pg_xact_status($1::text::xid8)", transaction_id
            )
        except Exception as error:  # the outcome cannot be learned now
            raise CommitOutcomeUnknown(error) from error
        if status in ("committed", "aborted"):
            return bool(status == "committed")
        await asyncio.sleep(SETTLE_PAUSE_S)
    raise CommitOutcomeUnknown(cause)


class CommitOutcomeUnknown(Exception):
    """The COMMIT may or may not have been applied, and the store could not be
    asked: every caller gets CommitUnconfirmed (a 503, whatever the store's error
    was), and nothing is retried."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause
