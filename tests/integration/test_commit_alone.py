"""A write of events alone is one INSERT outside a transaction block
(services/command_api/commit.py): its own transaction, and when its connection is
lost, an outcome learned from its backend, never guessed. The statement is held on
the commit-order lock (7170005, migration 0011) by another session, so the
connection can be cut while it waits, and the statement then commits, or is ended,
at the test's moment."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.command_api import commit as commit_module
from services.command_api.commit import (
    CommitOutcomeUnknown,
    Committed,
    Write,
    commit,
)
from shared import events as e
from shared.store import postgres
from shared.store.new_events import NewEvent, StreamHead, chain
from shared.store.postgres import CONNECTION_ERRORS
from tests.e2e.deadlines import wait_until
from tests.support.environment import Environment

COMMIT_ORDER_LOCK = 7_170_005
DEADLINE_S = 10.0


def _events() -> list[NewEvent]:
    """Two events of a new stream (a client's creation and deletion)."""
    client_id = uuid.uuid4().int % 1_000_000_000
    return chain(
        b"k",
        1,
        e.client_stream(client_id),
        StreamHead(0, "0" * 64),
        [
            e.ClientCreated(
                client_id=client_id, account_id=1, category_id=1, business_name="A"
            ),
            e.ClientDeleted(client_id=client_id),
        ],
        dt.datetime.now(dt.UTC),
        e.Metadata(correlation_id="alone"),
    )


def _write(events: list[NewEvent], keyed: bool = False) -> Write:
    return Write(events=events, answer=lambda stored: [], keyed=keyed)


@pytest.fixture
async def pool(isolated: Environment) -> AsyncIterator[asyncpg.Pool]:
    pool = await postgres.create_pool(isolated.settings.database_url, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture
async def lock(isolated: Environment) -> AsyncIterator[asyncpg.Connection]:
    """A session holding the commit-order lock until the test releases it."""
    conn = await asyncpg.connect(isolated.admin_url)
    await conn.execute("SELECT pg_advisory_lock($1)", COMMIT_ORDER_LOCK)
    yield conn
    await conn.execute("SELECT pg_advisory_unlock_all()")
    await conn.close()


async def _held(
    isolated: Environment, pool: asyncpg.Pool, lock: asyncpg.Connection, write: Write
) -> tuple[asyncio.Future[Committed], asyncpg.Connection, int]:
    """The write started on a connection of its own, until its statement waits for
    the commit-order lock; its task, connection and backend."""
    conn = await postgres.connect(isolated.settings.database_url)
    backend = conn.get_server_pid()
    task = asyncio.ensure_future(commit(conn, pool, write))

    async def waiting() -> bool:
        return bool(
            await lock.fetchval(
                "SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted"
                " AND locktype = 'advisory'",
                backend,
            )
        )

    await wait_until(waiting, DEADLINE_S, "the statement waits for the lock")
    return task, conn, backend


async def _found(lock: asyncpg.Connection, events: list[NewEvent]) -> dict[object, int]:
    rows = await lock.fetch(
        "SELECT event_id, position FROM events WHERE event_id = ANY($1)",
        [event.event_id for event in events],
    )
    return {row["event_id"]: row["position"] for row in rows}


async def test_a_lost_reply_of_a_statement_that_commits_answers_its_events(
    isolated: Environment, pool: asyncpg.Pool, lock: asyncpg.Connection
) -> None:
    """The connection is cut while the statement waits; it then gets the lock and
    commits with its client gone (its own transaction: no COMMIT was to come), its
    reply going nowhere. The writer, meanwhile asking after the
    backend (active: wait), answers the committed events with their positions, not
    the connection's error: nothing is written twice by a retry."""
    events = _events()
    task, conn, _ = await _held(isolated, pool, lock, _write(events))
    conn.terminate()
    await asyncio.sleep(0.3)
    assert not task.done()  # the backend is still active: the outcome is open
    await lock.execute("SELECT pg_advisory_unlock($1)", COMMIT_ORDER_LOCK)
    committed = await asyncio.wait_for(task, DEADLINE_S)
    found = await _found(lock, events)
    assert len(found) == 2
    assert [event.position for event in committed.stored] == [
        found[event.event_id] for event in events
    ]


async def test_a_write_with_an_answer_to_store_keeps_its_transaction_block(
    isolated: Environment, pool: asyncpg.Pool, lock: asyncpg.Connection
) -> None:
    """The same cut for a write with an Idempotency-Key answer to store: it runs
    between BEGIN and COMMIT, so with its client gone it never commits; the writer
    raises the connection's error and nothing is written."""
    events = _events()
    task, conn, backend = await _held(isolated, pool, lock, _write(events, True))
    conn.terminate()
    with pytest.raises(CONNECTION_ERRORS):
        await asyncio.wait_for(task, DEADLINE_S)
    await lock.execute("SELECT pg_advisory_unlock($1)", COMMIT_ORDER_LOCK)

    async def gone() -> bool:
        return not await lock.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", backend
        )

    await wait_until(gone, DEADLINE_S, "the backend ended, its transaction aborted")
    assert await _found(lock, events) == {}


async def test_a_lost_connection_whose_statement_never_ran_raises_its_error(
    isolated: Environment, pool: asyncpg.Pool, lock: asyncpg.Connection
) -> None:
    """The connection is cut and its backend ended before it got the lock: the
    writer learns the backend is gone and nothing was written, and raises the
    connection's error (the appender may retry the batch)."""
    events = _events()
    task, conn, backend = await _held(isolated, pool, lock, _write(events))
    conn.terminate()
    await lock.execute("SELECT pg_terminate_backend($1, 5000)", backend)
    with pytest.raises(CONNECTION_ERRORS):
        await asyncio.wait_for(task, DEADLINE_S)
    await lock.execute("SELECT pg_advisory_unlock($1)", COMMIT_ORDER_LOCK)
    assert await _found(lock, events) == {}


async def test_a_statement_still_waiting_when_asking_ends_is_an_unknown_outcome(
    isolated: Environment,
    pool: asyncpg.Pool,
    lock: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The backend stays active past the settling's attempts: CommitOutcomeUnknown
    (503 for the callers), and rightly, since the statement commits once the lock is
    released."""
    monkeypatch.setattr(commit_module, "SETTLE_ATTEMPTS", 3)
    monkeypatch.setattr(commit_module, "SETTLE_PAUSE_S", 0.05)
    events = _events()
    task, conn, _ = await _held(isolated, pool, lock, _write(events))
    conn.terminate()
    with pytest.raises(CommitOutcomeUnknown):
        await asyncio.wait_for(task, DEADLINE_S)
    await lock.execute("SELECT pg_advisory_unlock($1)", COMMIT_ORDER_LOCK)

    async def committed() -> bool:
        return len(await _found(lock, events)) == 2

    await wait_until(committed, DEADLINE_S, "the statement committed after all")
