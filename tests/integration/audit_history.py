"""The history the audit tests verify and tamper with: one business's category,
clients, postings, deposit, archive and deletion written through the HTTP API, the
report `ledger audit verify` gives for it, and tampering as the superuser (with the
append-only trigger switched off for the one statement)."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from services.audit.report import Report
from services.audit.verify import verify
from shared.key_settings import settings_keyring
from tests.support.environment import Environment


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
