"""Steps the integration tests share: commands through a real Appender, raw store
appends, and waiting on a deadline for a condition to become true."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal

import asyncpg

from services.command_api import renderers
from services.command_api.appender import Appender
from services.command_api.submissions import IdempotencyClaim, Outcome, Result
from shared import commands as c
from shared import events as e
from shared.store.event_store import Cursor, load_stream, read_after
from shared.store.new_events import NewEvent, new_event

TODAY = dt.date(2024, 11, 4)


def id_of(business: dict[str, object]) -> int:
    """The business id of a `business` fixture's dict."""
    value = business["business_id"]
    assert isinstance(value, int)
    return value


def metadata(key: str | None = None) -> e.Metadata:
    return e.Metadata(
        correlation_id=str(uuid.uuid4()),
        principal="integration-test",
        idempotency_key=key,
    )


def render_client_id(outcome: Outcome) -> tuple[int, bytes]:
    """A minimal rendering for creations: the new client's id."""
    assert outcome.client is not None
    return 201, str(outcome.client.client_id).encode()


async def create_client(
    appender: Appender, business_id: int, name: str = "Abas"
) -> int:
    command = c.CreateClient(business_id=business_id, business_name=name)
    result = await appender.submit(command, metadata(), render_client_id)
    return int(result.body)


def transaction(
    business_id: int,
    client_id: int,
    amount_minor: int,
    entry_type: e.EntryType = "debit",
) -> c.PostTransaction:
    return c.PostTransaction(
        business_id=business_id,
        client_id=client_id,
        entry_type=entry_type,
        amount_minor=amount_minor,
        date=TODAY,
    )


def deposit(
    business_id: int, client_id: int, amount_minor: int, entry_type: e.EntryType
) -> c.PostDeposit:
    return c.PostDeposit(
        business_id=business_id,
        client_id=client_id,
        entry_type=entry_type,
        amount_minor=amount_minor,
        date=TODAY,
    )


async def submit(
    appender: Appender,
    command: c.PostTransaction | c.PostDeposit,
    idempotency: IdempotencyClaim | None = None,
) -> Result:
    """Submit a posting with the route's own renderer."""
    render = (
        renderers.transaction
        if isinstance(command, c.PostTransaction)
        else renderers.deposit
    )
    key = idempotency.key if idempotency else None
    return await appender.submit(command, metadata(key), render, idempotency)


async def next_posting(
    conn: asyncpg.Connection | asyncpg.Pool,
    key: bytes,
    business_id: int,
    client_id: int,
    amount_minor: int,
) -> NewEvent:
    """A debit chained onto the client stream's current head, not yet stored."""
    stream_id = e.client_stream(client_id)
    history = await load_stream(conn, stream_id)
    head = history[-1]
    created = history[0].payload
    assert isinstance(created, e.ClientCreated)
    entry_id = await conn.fetchval("SELECT nextval('entry_id_seq')")
    return new_event(
        key=key,
        previous_hash=head.hash,
        business_id=business_id,
        stream_id=stream_id,
        version=head.version + 1,
        recorded_at=dt.datetime.now(dt.UTC),
        metadata=metadata(),
        payload=e.TransactionPosted(
            transaction_id=entry_id,
            client_id=client_id,
            account_id=created.account_id,
            entry_type="debit",
            amount_minor=amount_minor,
            date=TODAY,
        ),
    )


async def wait_until(
    condition: Callable[[], Awaitable[object]],
    what: str,
    timeout_s: float = 10.0,
    poll_s: float = 0.02,
) -> None:
    """Poll `condition` until it is truthy; fail the test when the deadline passes."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await condition():
        if asyncio.get_running_loop().time() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(poll_s)


async def blocked_on_lock(admin: asyncpg.Connection, query_prefix: str) -> int:
    """How many backends wait on a lock while running a query with this prefix."""
    count: int = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND ltrim(query, E' \\n\\t') LIKE $1 || '%'"
        " AND datname = current_database()",
        query_prefix,
    )
    return count


async def stream_versions(
    conn: asyncpg.Connection | asyncpg.Pool, stream_id: str
) -> list[int]:
    rows = await conn.fetch(
        "SELECT version FROM events WHERE stream_id = $1 ORDER BY version", stream_id
    )
    return [row["version"] for row in rows]


async def last_position(
    conn: asyncpg.Connection | asyncpg.Pool, business_id: int
) -> int:
    """The position of the business's latest event: exactly the X-Ledger-Position of
    the command that wrote it, while nothing else writes for the business."""
    position: int = await conn.fetchval(
        "SELECT max(position) FROM events WHERE business_id = $1", business_id
    )
    return position


def cents(value: object) -> int:
    """An exact JSON amount (parsed as Decimal) in minor units."""
    assert isinstance(value, Decimal | int), value
    minor = Decimal(value) * 100
    assert minor == minor.to_integral_value(), value
    return int(minor)


def decoded(body: bytes | str) -> dict[str, object]:
    """A response body with its numbers as exact Decimals."""
    value = json.loads(body, parse_float=Decimal)
    assert isinstance(value, dict)
    return value


# The commit-order lock every insert into events takes (migration 0011).
COMMIT_ORDER_LOCK = 7_170_005


async def waiting_for_commit_order(conn: asyncpg.Connection, pid: int) -> bool:
    """Whether backend `pid` waits for the commit-order lock (an append stuck behind
    another transaction's)."""
    waiting: bool = await conn.fetchval(
        "SELECT count(*) > 0 FROM pg_locks WHERE pid = $1 AND NOT granted"
        " AND locktype = 'advisory' AND objsubid = 1"
        " AND (classid::int8 << 32 | objid::int8) = $2",
        pid,
        COMMIT_ORDER_LOCK,
    )
    return waiting


async def head_cursor(conn: asyncpg.Connection) -> Cursor:
    """The read_after cursor past every event readable now."""
    cursor = Cursor()
    while batch := await read_after(conn, cursor, limit=1_000):
        cursor = batch[-1][0]
    return cursor


@asynccontextmanager
async def key_row_held(
    admin_url: str, business_id: int, key: str
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Hold an uncommitted idempotency_keys row for `key`: a batch that stores a
    response under that key then waits at that insert, its events written but not
    committed. Yields `release`, which rolls the row back and lets the batch go on."""
    conn = await asyncpg.connect(admin_url)
    try:
        held = conn.transaction()
        await held.start()
        await conn.execute(
            "INSERT INTO idempotency_keys"
            " (business_id, key, request_hash, status, body, position)"
            " VALUES ($1, $2, 'held', 201, '', 0)",
            business_id,
            key,
        )
        yield held.rollback
    finally:
        await conn.close()
