"""A replay's bulk load (services/replay/load.py): read a batch ahead, decoded while
the previous batch is applied, secondary indexes built after the load. Whatever the
batch and slice sizes, the rebuilt read models, tracking rows and checkpoints are the
same, the figures those the events say, and the tables keep the indexes their
schema files give them.

Runs on a database of its own (a replay rebuilds every business's read models),
with a history written straight into the event store (chained, as the appender
would), no projector running.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.cli.businesses import provision_business
from services.replay import load
from services.replay.rebuild import replay
from shared import events as e
from shared.domain import signed
from shared.store.event_store import append
from shared.store.new_events import StreamHead, chain, copy_rows
from shared.store.postgres import connect
from tests.support.environment import Environment, create_environment, drop_environment

CLIENTS = 40
FIRST_CLIENT = 7_000
READ_MODELS = ("rm_categories", "rm_clients", "rm_deposits", "rm_transactions")


@pytest.fixture(scope="module")
async def history(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    """CLIENTS clients of one business, each created, posted to, reversed, and some
    updated or archived between their postings."""
    env = await create_environment(*servers, tag="replayload")
    business = await provision_business(env.settings, "Replay load")
    business_id = int(str(business["business_id"]))
    conn = await connect(env.admin_url)
    try:
        category_id = await conn.fetchval(
            "SELECT category_id FROM category_names WHERE business_id = $1",
            business_id,
        )
        at = dt.datetime.now(dt.UTC)
        key = env.settings.hmac_key.encode()
        for client_id in range(FIRST_CLIENT, FIRST_CLIENT + CLIENTS):
            events = chain(
                key,
                business_id,
                e.client_stream(client_id),
                StreamHead(),
                _payloads(client_id, category_id, at.date()),
                at,
                e.Metadata(correlation_id=f"load-{client_id}", principal="test"),
            )
            await append(conn, copy_rows(events))
    finally:
        await conn.close()
    yield env
    await drop_environment(env)


def _payloads(client_id: int, category_id: int, day: dt.date) -> list[e.LedgerEvent]:
    transaction = client_id * 100
    deposit = transaction + 50
    payloads: list[e.LedgerEvent] = [
        e.ClientCreated(
            client_id=client_id,
            account_id=client_id + 1,
            category_id=category_id,
            business_name=f"Client {client_id}",
        )
    ]
    for n in range(5):
        payloads.append(
            e.TransactionPosted(
                transaction_id=transaction + n,
                client_id=client_id,
                account_id=client_id + 1,
                entry_type="debit" if n % 2 else "credit",
                amount_minor=client_id + n * 101,
                date=day,
            )
        )
        if n == 2 and client_id % 3 == 0:
            payloads.append(
                e.ClientUpdated(client_id=client_id, business_email="a@example.com")
            )
        if n == 3 and client_id % 4 == 0:
            payloads.append(e.ClientArchived(client_id=client_id))
    payloads += [
        e.DepositPosted(
            deposit_id=deposit,
            client_id=client_id,
            deposit_account_id=client_id + 2,
            entry_type="debit",
            amount_minor=5_000,
            date=day,
        ),
        e.TransactionReversed(
            transaction_id=transaction + 9,
            reversal_of=transaction + 1,
            client_id=client_id,
            account_id=client_id + 1,
            entry_type="credit",
            amount_minor=client_id + 101,
            date=day,
        ),
        e.DepositReversed(
            deposit_id=deposit + 1,
            reversal_of=deposit,
            client_id=client_id,
            deposit_account_id=client_id + 2,
            entry_type="credit",
            amount_minor=5_000,
            date=day,
        ),
    ]
    return payloads


async def test_any_batch_size_rebuilds_the_same_models_with_their_indexes(
    history: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replays the history once with the default batch (one batch holds it all) and
    once 7 events a batch decoded 2 rows a slice (many batches in flight): both give
    the same read-model rows, tracking rows and checkpoints, the figures summed from
    the payloads, and the indexes the migrations made."""
    conn = await asyncpg.connect(history.admin_url)
    try:
        indexes = await _indexes(conn)
        whole = await replay(conn, [])
        once = await _snapshot(conn)
        monkeypatch.setattr(load, "READ_BATCH", 7)
        monkeypatch.setattr(load, "DECODE_SLICE", 2)
        batched = await replay(conn, [])
        assert await _snapshot(conn) == once
        assert (batched.events, batched.position) == (whole.events, whole.position)
        assert await _indexes(conn) == indexes
        figures = await conn.fetch(
            "SELECT client_id, debit_minor, credit_minor, deposit_minor, archived,"
            " business_email, version FROM rm_clients ORDER BY client_id"
        )
    finally:
        await conn.close()
    assert whole.events == 1 + CLIENTS * 9 + CLIENTS // 3 + CLIENTS // 4
    assert [tuple(row) for row in figures] == [
        _expected(client_id)
        for client_id in range(FIRST_CLIENT, FIRST_CLIENT + CLIENTS)
    ]


def _expected(client_id: int) -> tuple[object, ...]:
    """A client's figures from its payloads (a reversal counts as a posting of the
    opposite type)."""
    debits = [client_id + n * 101 for n in range(5) if n % 2]
    credits = [client_id + n * 101 for n in range(5) if not n % 2]
    credits.append(client_id + 101)  # the reversal of the debit posted second
    deposit = signed("debit", 5_000) + signed("credit", 5_000)
    updated, archived = client_id % 3 == 0, client_id % 4 == 0
    version = 9 + updated + archived
    email = "a@example.com" if updated else ""
    return (client_id, sum(debits), sum(credits), deposit, archived, email, version)


async def _snapshot(conn: asyncpg.Connection) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the read models, tracking and checkpoints, in a fixed order."""
    tables: dict[str, list[tuple[object, ...]]] = {}
    for table in (*READ_MODELS, "projection_tracking", "projection_checkpoint"):
        rows = await conn.fetch(f"SELECT * FROM public.{table} ORDER BY 1, 2")
        tables[table] = [
            tuple(value for key, value in row.items() if key != "updated_at")
            if table == "projection_checkpoint"
            else tuple(row.values())
            for row in rows
        ]
    return tables


async def _indexes(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = 'public' AND tablename = ANY($1::text[])"
        " ORDER BY indexname",
        list(READ_MODELS),
    )
    return [(row["indexname"], row["indexdef"]) for row in rows]
