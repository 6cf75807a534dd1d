"""What `ledger audit verify` cannot see, as the README's threat model says: tampering
that changes nothing the hashes cover or the read-model checks compare.

These tests pin the limits down, so that the README's "It cannot detect" list stays
true: if verify learns to see one of them, its test fails and the README changes
with it. Same scenario as test_audit_verify.history, tampered as the superuser.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from services.audit.report import Report
from tests.integration.audit_history import history, report_of, tamper
from tests.integration.tampering import stream_rows
from tests.support.environment import Environment

_MOVE = (
    "INSERT INTO moved SELECT * FROM events WHERE position IN ($1, $2)",
    "DELETE FROM events WHERE position IN ($1, $2)",
    "INSERT INTO events OVERRIDING SYSTEM VALUE"
    " SELECT CASE position WHEN $1 THEN $2 ELSE $1 END, event_id, business_id,"
    " stream_id, version, type, schema_version, payload, metadata, recorded_at,"
    " transaction_id, hash, key_id, sealed FROM moved",
)


async def exchange_positions(admin: asyncpg.Connection, one: int, other: int) -> None:
    """Give two events each other's position (the identity column cannot be updated,
    so the rows go out and come back in, as the superuser)."""
    async with admin.transaction():
        await admin.execute("SET LOCAL session_replication_role = replica")
        await admin.execute(
            "CREATE TEMPORARY TABLE moved ON COMMIT DROP"
            " AS SELECT * FROM events WITH NO DATA"
        )
        for statement in _MOVE:
            await admin.execute(statement, one, other)


async def test_positions_exchanged_between_two_events_go_unnoticed(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """The global positions of `first`'s versions 2 and 3 exchanged (rows deleted and
    inserted again with each other's position): no hash covers a position, and a
    stream's order is its versions, so verify is clean."""
    ids = await history(service, business)
    stream = f"client-{ids['first']}"
    before = await stream_rows(admin, stream)
    second, third = before[1]["position"], before[2]["position"]
    columns = await admin.fetch(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = 'events' ORDER BY ordinal_position"
    )
    assert [row["column_name"] for row in columns] == [
        "position", "event_id", "business_id", "stream_id", "version", "type",
        "schema_version", "payload", "metadata", "recorded_at", "transaction_id",
        "hash", "key_id", "sealed",
    ]  # fmt: skip
    await exchange_positions(admin, second, third)
    after = await stream_rows(admin, stream)
    assert [(row["version"], row["position"]) for row in after[1:3]] == [
        (2, third),
        (3, second),
    ]
    report = await report_of(environment, pool, business)
    assert report == Report(ok=True, businesses=1, streams=4, events=9, differences=[])


async def test_read_model_columns_verify_does_not_compare_go_unnoticed(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """Descriptions of two debit lines of `first`, the client's account_id and the
    category's description changed: every figure verify compares is unchanged, so
    it is clean. (A line's amount, date and reversal link are in its digest since
    the aged receivables report reads them: test_audit_tampering_aging_inputs.py.)"""
    ids = await history(service, business)
    answer = await service.post(
        f"/api/v3/clients/{ids['first']}/transactions",
        json={"type": "debit", "amount": 10},
        headers=business["headers"],
    )
    assert answer.status == 201, await answer.text()
    lines = await admin.fetch(
        "SELECT transaction_id, amount_minor FROM rm_transactions"
        " WHERE client_id = $1 AND entry_type = 'debit' ORDER BY transaction_id",
        ids["first"],
    )
    assert [row["amount_minor"] for row in lines] == [15000, 1000]
    for line in lines:
        await tamper(
            admin,
            "UPDATE rm_transactions SET description = 'forged'"
            " WHERE transaction_id = $1",
            line["transaction_id"],
        )
    await tamper(
        admin,
        "UPDATE rm_clients SET account_id = account_id + 1 WHERE client_id = $1",
        ids["first"],
    )
    await tamper(
        admin,
        "UPDATE rm_categories SET description = 'forged' WHERE category_id = $1",
        ids["category"],
    )
    report = await report_of(environment, pool, business)
    assert report == Report(ok=True, businesses=1, streams=4, events=10, differences=[])
