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
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from services.audit.report import Difference, Report
from shared.store.chain_checkpoints import take_checkpoint
from tests.integration.audit_history import history, last_event, report_of, tamper
from tests.integration.tampering import figures, stored_digest
from tests.support.environment import Environment


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


def _read_model_differences(
    bid: int, ids: dict[str, int], digests: tuple[int, int]
) -> list[Difference]:
    """What verify names once the first client's row and its credit line are
    deleted and the category's customer count is set to 7."""
    return [
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
        *figures(bid, f"client-{ids['first']}", "statement",
                 credit_minor=(2025, 0),
                 transaction_digest=digests,
                 transaction_lines=(2, 1)),
    ]  # fmt: skip


async def test_read_model_tampering_is_named(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    ids = await history(service, business)
    bid, stream = business["business_id"], f"client-{ids['first']}"
    digest_before = await stored_digest(admin, stream)
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
    digests = (digest_before, await stored_digest(admin, stream))
    assert report.differences == _read_model_differences(bid, ids, digests)
