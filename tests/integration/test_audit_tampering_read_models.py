"""`ledger audit verify` and the read models: rows filled in behind the projections'
back are named, and a projection held behind for real is not a difference.

The extra rows are copies of real ones under new ids, inserted as the superuser into
the session's read models. The projection held behind runs in an environment of its
own with the real relay and projector (tests/support/service.py's pieces): the
projector is stopped while events go on being appended and published, and one
projection is brought ahead of the other from the store.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from projections.registry import PROJECTIONS
from projections.runner import apply_batch
from services.audit.report import Report
from services.audit.verify import verify
from services.cli.businesses import provision_business
from services.cli.workers import wire_projector, wire_relay
from services.command_api.appender import Appender
from shared import events as e
from shared.key_settings import settings_keyring
from shared.store.event_store import append, load_stream
from shared.store.postgres import create_pool
from shared.worker.loop import run_until_stopped
from tests.integration.audit_history import history, report_of, tamper
from tests.integration.scenarios import (
    blocked_on_lock,
    create_client,
    id_of,
    next_posting,
    submit,
    transaction,
    wait_until,
)
from tests.integration.tampering import figures, stored_digest
from tests.support.environment import Environment, create_environment, drop_environment

# A row copied under a new id, every column but the generated ones (rm_clients'
# search columns, which PostgreSQL computes and refuses a value for).
_COPY = (
    "INSERT INTO {table} ({columns}) SELECT {columns} FROM"
    " (SELECT (jsonb_populate_record(NULL::{table},"
    " to_jsonb(r) || jsonb_build_object('{key}', $2::bigint))).*"
    " FROM {table} r WHERE {where}) copied"
)
_WRITTEN_COLUMNS = (
    "SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute"
    " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped"
    " AND attgenerated = ''"
)


async def test_read_model_rows_added_behind_the_projections_back_are_named(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """A copy of client `first` under a new id, of category Retail under a new id, and
    of `first`'s debit and deposit lines: each extra row is named (`row` absent
    expected, present found), and the business's summary and `first`'s statement
    count and sum them; the HTTP route answers the same report."""
    ids = await history(service, business)
    bid, stream = business["business_id"], f"client-{ids['first']}"
    new = 10**12 + uuid.uuid4().int % 10**9
    digest_before = await stored_digest(admin, stream)
    for table, key, where, old in (
        ("rm_clients", "client_id", "client_id = $1", ids["first"]),
        ("rm_categories", "category_id", "category_id = $1", ids["category"]),
        ("rm_transactions", "transaction_id", "client_id = $1 AND entry_type = 'debit'",
         ids["first"]),
        ("rm_deposits", "deposit_id", "client_id = $1", ids["first"]),
    ):  # fmt: skip
        columns = await admin.fetchval(_WRITTEN_COLUMNS, table)
        copy = _COPY.format(table=table, columns=columns, key=key, where=where)
        await tamper(admin, copy, old, new)
    report = await report_of(environment, pool, business)
    digests = (digest_before, await stored_digest(admin, stream))
    assert report.differences == [
        *figures(bid, f"client-{new}", "client", row=("absent", "present")),
        *figures(bid, f"category-{new}", "category", row=("absent", "present")),
        *figures(bid, stream, "summary", customers=(1, 2),
                 total_balance_minor=(12975, 25950), total_deposit_minor=(4000, 8000)),
        *figures(bid, stream, "statement", debit_minor=(15000, 30000),
                 deposit_lines=(1, 2), deposit_minor=(4000, 8000),
                 transaction_digest=digests,
                 transaction_lines=(2, 3)),
    ]  # fmt: skip
    # The caller's GET /api/v3/audit/verify answers the same report: 200, ok false.
    answer = await service.get("/api/v3/audit/verify", headers=business["headers"])
    assert answer.status == 200
    assert await answer.json() == msgspec.to_builtins(report)


@pytest.fixture
async def own(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    """An environment of its own: its relay and projectors see only its events."""
    env = await create_environment(*servers, tag="behind")
    yield env
    await drop_environment(env)


class Workers:
    """The relay and the projector as tasks, each stoppable on its own."""

    def __init__(self, environment: Environment) -> None:
        self._settings = environment.settings
        self._stops: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Future[None]] = {}

    def start(self, name: str) -> None:
        self._stops[name] = asyncio.Event()
        wire = wire_relay if name == "relay" else wire_projector
        work = wire(self._settings).run
        self._tasks[name] = asyncio.ensure_future(
            run_until_stopped(work, self._stops[name])
        )

    async def stop(self, name: str) -> None:
        self._stops[name].set()
        await self._tasks.pop(name)

    async def stop_all(self) -> None:
        for name in list(self._tasks):
            await self.stop(name)


async def tracked(pool: asyncpg.Pool, projection: str, stream: str) -> int:
    version: int | None = await pool.fetchval(
        "SELECT version FROM projection_tracking WHERE projection = $1"
        " AND stream_id = $2",
        projection,
        stream,
    )
    return version or 0


async def test_a_projection_held_behind_is_not_a_difference(own: Environment) -> None:
    """With the projector stopped after a client's debit of 5.00 and statements alone
    applying a credit of 2.00 and a debit of 3.00 after it (from the store), verify is
    clean; a figure changed in the part balances applied is still named; restarted,
    the projector brings balances up (8.00 debited) and verify is clean again."""
    business_id = id_of(await provision_business(own.settings, "Behind"))
    pool = await create_pool(own.settings.database_url, max_size=4)
    appender = Appender(pool, own.settings.hmac_key.encode(), 500)
    appender.start()
    workers = Workers(own)
    keys = settings_keyring(own.settings)
    try:
        for name in ("relay", "projector"):
            workers.start(name)
        client_id = await create_client(appender, business_id)
        stream = e.client_stream(client_id)
        await submit(appender, transaction(business_id, client_id, 500))

        async def applied(projection: str, version: int) -> bool:
            return await tracked(pool, projection, stream) == version

        for name in ("balances", "statements"):
            await wait_until(partial(applied, name, 2), f"{name} at version 2")
        await workers.stop("projector")
        await submit(appender, transaction(business_id, client_id, 200, "credit"))
        await submit(appender, transaction(business_id, client_id, 300))
        async with pool.acquire() as conn:
            later = await load_stream(conn, stream, after_version=2)
        assert await apply_batch(pool, PROJECTIONS["statements"], later) == 2

        assert await tracked(pool, "balances", stream) == 2
        assert await client_figures(pool, client_id) == (500, 0, 2)
        clean = Report(ok=True, businesses=1, streams=2, events=5, differences=[])
        async with pool.acquire() as conn:
            assert await verify(conn, keys, business_id) == clean
            await tamper_debit(own, client_id, 501)
            assert (await verify(conn, keys, business_id)).differences == [
                *figures(business_id, stream, "client", debit_minor=(500, 501)),
                *figures(business_id, stream, "summary",
                         total_balance_minor=(500, 501)),
            ]  # fmt: skip
            await tamper_debit(own, client_id, 500)

        workers.start("projector")
        await wait_until(partial(applied, "balances", 4), "balances at version 4")
        assert await client_figures(pool, client_id) == (800, 200, 4)
        async with pool.acquire() as conn:
            assert await verify(conn, keys, business_id) == clean
    finally:
        await workers.stop_all()
        await appender.stop()
        await pool.close()


async def client_figures(pool: asyncpg.Pool, client_id: int) -> tuple[int, int, int]:
    row = await pool.fetchrow(
        "SELECT debit_minor, credit_minor, version FROM rm_clients"
        " WHERE client_id = $1",
        client_id,
    )
    assert row is not None
    return int(row["debit_minor"]), int(row["credit_minor"]), int(row["version"])


async def tamper_debit(environment: Environment, client_id: int, debit: int) -> None:
    admin = await asyncpg.connect(environment.admin_url)
    try:
        await tamper(
            admin,
            "UPDATE rm_clients SET debit_minor = $2 WHERE client_id = $1",
            client_id,
            debit,
        )
    finally:
        await admin.close()


async def test_work_committed_while_verify_runs_is_not_half_seen(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """Verify held on a lock on rm_clients after reading the events, while one
    transaction appends a debit of 7.00 and applies it to rm_clients and the balances
    tracking: verify still reports its own snapshot clean (3 events), and the next
    run sees the debit and is clean too (4 events)."""
    bid = business["business_id"]
    answer = await service.post(
        "/api/v3/clients", json={"business_name": "Snapshot"},
        headers=business["headers"],
    )  # fmt: skip
    client_id = int((await answer.json())["id"])
    answer = await service.post(
        f"/api/v3/clients/{client_id}/transactions",
        json={"type": "debit", "amount": 5},
        headers=business["headers"],
    )
    assert answer.status == 201, await answer.text()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE rm_clients IN ACCESS EXCLUSIVE MODE")
        running = asyncio.ensure_future(report_of(environment, pool, business))

        async def verify_waits() -> bool:
            return await blocked_on_lock(admin, "SELECT client_id,") == 1

        await wait_until(verify_waits, "verify waiting on rm_clients")
        key = environment.settings.hmac_key.encode()
        await append(conn, [await next_posting(conn, key, bid, client_id, 700)])
        await conn.execute(
            "UPDATE rm_clients SET debit_minor = debit_minor + 700, version = 3"
            " WHERE client_id = $1",
            client_id,
        )
        await conn.execute(
            "UPDATE projection_tracking SET version = 3"
            " WHERE projection = 'balances' AND stream_id = $1",
            e.client_stream(client_id),
        )
    clean = Report(ok=True, businesses=1, streams=2, events=3, differences=[])
    assert await running == clean
    assert await client_figures(pool, client_id) == (1200, 0, 3)
    assert await report_of(environment, pool, business) == msgspec.structs.replace(
        clean, events=4
    )
