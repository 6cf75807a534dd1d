"""`ledger audit verify`: a clean history verifies; each kind of tampering is named.

Each test builds its own business through the HTTP API (read-your-writes: the read
models hold every event when a command answers), then tampers with the store or the
read models as a superuser (`session_replication_role = replica` switches the
append-only trigger off) and checks the exact differences verify reports.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from services.audit.report import Difference, Report
from services.audit.verify import verify
from services.cli.businesses import provision_business
from services.cli.main import wire_relay
from services.command_api.appender import Appender
from shared import events as e
from shared.config import settings_keyring
from shared.store.chain_checkpoints import take_checkpoint
from shared.store.postgres import create_pool
from shared.worker.loop import run_until_stopped
from tests.integration.scenarios import (
    create_client,
    id_of,
    submit,
    transaction,
    wait_until,
)
from tests.support.environment import Environment, create_environment, drop_environment


async def history(service: TestClient, business: dict[str, Any]) -> dict[str, int]:
    """A category, a client with two transactions, a deposit and an archive, and a
    second client that is deleted: 9 events on 4 streams with "Uncategorised"."""
    headers = business["headers"]

    async def post(path: str, body: dict[str, object]) -> dict[str, Any]:
        answer = await service.post(path, json=body, headers=headers)
        assert answer.status == 201 or answer.status == 200, await answer.text()
        result: dict[str, Any] = await answer.json()
        return result

    category = await post(
        "/api/v3/clients/category", {"name": "Retail", "description": "Shops"}
    )
    first = (
        await post(
            "/api/v3/clients",
            {"business_name": "First", "category_id": category["id"]},
        )
    )["id"]
    await post(
        f"/api/v3/clients/{first}/transactions", {"type": "debit", "amount": 150}
    )
    await post(
        f"/api/v3/clients/{first}/transactions", {"type": "credit", "amount": "20.25"}
    )
    await post(f"/api/v3/clients/{first}/deposits", {"type": "debit", "amount": 40})
    await post(f"/api/v3/clients/{first}/archive", {})
    second = (await post("/api/v3/clients", {"business_name": "Second"}))["id"]
    deleted = await service.delete(f"/api/v3/clients/{second}", headers=headers)
    assert deleted.status == 200
    return {"first": first, "second": second, "category": category["id"]}


async def report_of(
    environment: Environment, pool: asyncpg.Pool, business: dict[str, Any]
) -> Report:
    async with pool.acquire() as conn:
        return await verify(
            conn, settings_keyring(environment.settings), business["business_id"]
        )


async def tamper(admin: asyncpg.Connection, statement: str, *args: object) -> None:
    async with admin.transaction():
        await admin.execute("SET LOCAL session_replication_role = replica")
        await admin.execute(statement, *args)


async def last_event(admin: asyncpg.Connection, stream_id: str) -> asyncpg.Record:
    row = await admin.fetchrow(
        "SELECT position, version, hash FROM events WHERE stream_id = $1"
        " ORDER BY version DESC LIMIT 1",
        stream_id,
    )
    assert row is not None
    return row


async def test_a_clean_history_verifies(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
) -> None:
    await history(service, business)
    report = await report_of(environment, pool, business)
    assert report == Report(ok=True, businesses=1, streams=4, events=9, differences=[])
    answer = await service.get("/api/v3/audit/verify", headers=business["headers"])
    assert answer.status == 200
    assert await answer.json() == {
        "ok": True,
        "businesses": 1,
        "streams": 4,
        "events": 9,
        "differences": [],
    }


async def test_the_cli_exits_0_with_a_one_line_summary_and_1_on_a_difference(
    environment: Environment,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    ids = await history(service, business)
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": environment.settings.database_url,
        "LEDGER_HMAC_KEY": environment.settings.hmac_key,
    }
    command = [
        sys.executable, "-m", "services.cli.main", "audit", "verify",
        "--business", str(business["business_id"]),
    ]  # fmt: skip
    clean = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
    )
    assert (clean.returncode, clean.stdout) == (
        0,
        "audit verify: ok; 1 businesses, 4 streams, 9 events checked\n",
    )
    await tamper(
        admin,
        "UPDATE rm_clients SET credit_minor = 0 WHERE client_id = $1",
        ids["first"],
    )
    dirty = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
    )
    bid = business["business_id"]
    assert dirty.returncode == 1
    assert dirty.stdout.splitlines() == [
        f"client business {bid} stream client-{ids['first']}:"
        " credit_minor: expected 2025, found 0",
        f"summary business {bid}: total_balance_minor: expected 12975, found 15000",
    ]
    assert dirty.stderr.splitlines()[-1] == (
        "audit verify: 2 differences; 1 businesses, 4 streams, 9 events checked"
    )


async def test_a_changed_payload_is_named_by_its_event(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    ids = await history(service, business)
    row = await admin.fetchrow(
        "SELECT position, version, hash FROM events WHERE stream_id = $1"
        " AND type = 'transaction.posted' ORDER BY version LIMIT 1",
        f"client-{ids['first']}",
    )
    await tamper(
        admin,
        "UPDATE events SET payload = jsonb_set(payload, '{amount_minor}', '1500')"
        " WHERE position = $1",
        row["position"],
    )
    report = await report_of(environment, pool, business)
    [changed] = [d for d in report.differences if d.kind == "hash"]
    assert (changed.stream_id, changed.position, changed.version, changed.found) == (
        f"client-{ids['first']}",
        row["position"],
        row["version"],
        row["hash"],
    )
    assert changed.expected != row["hash"]
    # The events now say 15.00 was debited where the read model holds 150.00.
    assert (
        Difference(
            kind="client",
            business_id=business["business_id"],
            stream_id=f"client-{ids['first']}",
            field="debit_minor",
            expected=1500,
            found=15000,
        )
        in report.differences
    )
    assert not report.ok


async def test_a_deleted_last_event_shows_as_a_short_stream(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    ids = await history(service, business)
    async with pool.acquire() as conn:
        assert await take_checkpoint(conn, environment.settings.hmac_key.encode()) > 0
    stream = f"client-{ids['first']}"
    last = await last_event(admin, stream)
    assert last["version"] == 5
    checkpoint = await admin.fetchrow(
        "SELECT version, hash FROM chain_checkpoints WHERE stream_id = $1", stream
    )
    assert (checkpoint["version"], checkpoint["hash"]) == (5, last["hash"])
    await tamper(admin, "DELETE FROM events WHERE position = $1", last["position"])

    report = await report_of(environment, pool, business)
    shorts = [d for d in report.differences if d.kind == "short"]
    assert [(d.stream_id, d.version, d.expected, d.found) for d in shorts] == [
        (stream, 5, 5, 4)
    ]
    # The chain itself still verifies: only the checkpoint shows the deletion.
    assert [d for d in report.differences if d.kind in ("hash", "version")] == []

    # The ledger.checkpoint event (the copy subscribers hold) names it on its own.
    await tamper(admin, "DELETE FROM chain_checkpoints WHERE stream_id = $1", stream)
    report = await report_of(environment, pool, business)
    [short] = [d for d in report.differences if d.kind == "short"]
    assert (short.stream_id, short.version, short.expected, short.found) == (
        stream,
        5,
        5,
        4,
    )
    assert short.field is not None and "chain_checkpoints" not in short.field


async def test_a_deleted_middle_event_breaks_the_version_run_and_the_chain(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    ids = await history(service, business)
    stream = f"client-{ids['first']}"
    third = await admin.fetchrow(
        "SELECT position FROM events WHERE stream_id = $1 AND version = 3", stream
    )
    fourth = await admin.fetchrow(
        "SELECT position, hash FROM events WHERE stream_id = $1 AND version = 4",
        stream,
    )
    await tamper(admin, "DELETE FROM events WHERE position = $1", third["position"])
    report = await report_of(environment, pool, business)
    found = {
        (d.kind, d.stream_id, d.version, d.position)
        for d in report.differences
        if d.kind in ("hash", "version")
    }
    assert found == {
        ("version", stream, 4, fourth["position"]),
        ("hash", stream, 4, fourth["position"]),
    }


async def test_read_model_tampering_is_named(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    ids = await history(service, business)
    bid = business["business_id"]
    await tamper(admin, "DELETE FROM rm_clients WHERE client_id = $1", ids["first"])
    await tamper(
        admin,
        "UPDATE rm_categories SET customer_count = 7 WHERE category_id = $1",
        ids["category"],
    )
    await tamper(
        admin,
        "DELETE FROM rm_transactions WHERE client_id = $1 AND entry_type = 'credit'",
        ids["first"],
    )
    report = await report_of(environment, pool, business)
    assert report.differences == [
        Difference(
            kind="client",
            business_id=bid,
            stream_id=f"client-{ids['first']}",
            field="row",
            expected="present",
            found="absent",
        ),
        Difference(
            kind="category",
            business_id=bid,
            stream_id=f"category-{ids['category']}",
            field="customer_count",
            expected=1,
            found=7,
        ),
        Difference(
            kind="summary",
            business_id=bid,
            field="customers",
            expected=1,
            found=None,
        ),
        Difference(
            kind="summary",
            business_id=bid,
            field="total_balance_minor",
            expected=12975,
            found=None,
        ),
        Difference(
            kind="summary",
            business_id=bid,
            field="total_deposit_minor",
            expected=4000,
            found=None,
        ),
        Difference(
            kind="statement",
            business_id=bid,
            stream_id=f"client-{ids['first']}",
            field="credit_minor",
            expected=2025,
            found=0,
        ),
        Difference(
            kind="statement",
            business_id=bid,
            stream_id=f"client-{ids['first']}",
            field="transaction_lines",
            expected=2,
            found=1,
        ),
    ]


@pytest.fixture
async def own(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    """An environment of its own: its relay publishes every event of its database to
    its own exchange and queues, out of the way of tests that count messages."""
    env = await create_environment(*servers, tag="ckpt")
    yield env
    await drop_environment(env)


async def test_the_relay_checkpoints_chain_heads_and_publishes_them(
    own: Environment,
) -> None:
    """A relay with a short checkpoint interval records the new heads in
    chain_checkpoints and as a ledger.checkpoint event, which it then publishes."""
    business_id = id_of(await provision_business(own.settings, "Checkpointed"))
    pool = await create_pool(own.settings.database_url, max_size=4)
    appender = Appender(pool, own.settings.hmac_key.encode(), 500)
    appender.start()
    settings = msgspec.structs.replace(own.settings, checkpoint_interval_s=0.2)
    stop = asyncio.Event()
    running = asyncio.ensure_future(run_until_stopped(wire_relay(settings).run, stop))
    try:
        client_id = await create_client(appender, business_id)
        await submit(appender, transaction(business_id, client_id, 500))
        stream = e.client_stream(client_id)

        async def published_checkpoint() -> bool:
            row = await pool.fetchrow(
                "SELECT e.position FROM chain_checkpoints c"
                " JOIN events e ON e.stream_id = $2 AND e.type = 'ledger.checkpoint'"
                "  AND e.payload->'heads' @> jsonb_build_array("
                "    jsonb_build_object('stream_id', $1::text, 'version', 2))"
                " WHERE c.stream_id = $1 AND c.version = 2",
                stream,
                e.checkpoint_stream(business_id),
            )
            if row is None:
                return False
            published = await pool.fetchval(
                "SELECT position FROM relay_cursor WHERE relay = 'main'"
            )
            return bool(published and published >= row["position"])

        await wait_until(published_checkpoint, "a published checkpoint of the head")
        head = await pool.fetchval(
            "SELECT hash FROM events WHERE stream_id = $1 AND version = 2", stream
        )
        recorded = await pool.fetchval(
            "SELECT hash FROM chain_checkpoints WHERE stream_id = $1", stream
        )
        assert recorded == head
    finally:
        stop.set()
        await running
        await appender.stop()
        await pool.close()
