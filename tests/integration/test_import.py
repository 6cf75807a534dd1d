"""The import route in-process: POST /api/clients-import and /api/v3/clients/import
with xlsx files built by the tests, checked against the read models over HTTP."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.support.workbooks import HEADER, WRITERS, form, workbook

IMPORT = "/api/v3/clients/import"


async def send(
    service: TestClient,
    business: dict[str, Any],
    raw: bytes,
    path: str = IMPORT,
    headers: dict[str, str] | None = None,
    **fields: str,
) -> tuple[int, Any]:
    response = await service.post(
        path,
        data=form(raw, **fields),
        headers={**business["headers"], **(headers or {})},
    )
    return response.status, await response.json()


async def get(service: TestClient, business: dict[str, Any], path: str) -> Any:
    response = await service.get(path, headers=business["headers"])
    assert response.status == 200, await response.text()
    return await response.json()


def by_name(clients: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {client["business_name"]: client for client in clients}


@pytest.mark.parametrize("writer", WRITERS)
async def test_import_creates_clients_with_opening_balances_visible_at_once(
    service: TestClient, business: dict[str, Any], writer: str
) -> None:
    """A file of three customers (a debt, a credit, nothing owed) answers 201 with the
    totals, and the clients, balances and summary read back exactly at once."""
    raw = workbook(
        writer,
        [
            HEADER,
            ["Ama Stores", "0244000001", "ama@example.com", "Accra", 1234.5],
            ["Kofi Traders", None, None, None, "-20.05"],
            [None, None, None, None, None],
            ["  Esi Ltd ", 244000003, "", "Kumasi", 0],
        ],
    )
    status, body = await send(service, business, raw)
    assert status == 201, body
    assert body["imported"] == 3
    assert body["total_unpaid"] == 1214.45
    clients = by_name(await get(service, business, "/api/v3/clients"))
    assert sorted(clients) == ["Ama Stores", "Esi Ltd", "Kofi Traders"]
    ama, kofi, esi = clients["Ama Stores"], clients["Kofi Traders"], clients["Esi Ltd"]
    assert (ama["business_phone"], ama["business_email"]) == (
        "0244000001",
        "ama@example.com",
    )
    assert (ama["balance"], ama["total_debit"]) == ("1,234.50", "1,234.50")
    assert (kofi["balance"], kofi["total_credit"]) == ("-20.05", "20.05")
    assert (esi["business_phone"], esi["balance"]) == ("244000003", "0.00")
    assert {client["category"] for client in clients.values()} == {"Uncategorised"}
    summary = await get(service, business, "/api/v3/clients/summary")
    assert summary["customer_count"] == 3
    assert summary["total_balance"] == 1214.45


async def test_import_events_carry_the_import_id_as_correlation_id(
    service: TestClient, business: dict[str, Any], pool: asyncpg.Pool
) -> None:
    """One clients.imported event plus each client's created, posting, deposit and
    archive events are stored, all correlated by the import id and dated today."""
    raw = workbook(
        "openpyxl",
        [
            [*HEADER, "Deposit Amount", "Archived"],
            ["Yaw", None, None, None, "10", "5.5", "yes"],
        ],
    )
    status, body = await send(service, business, raw, path="/api/clients-import")
    assert status == 201, body
    rows = await pool.fetch(
        "SELECT type, payload FROM events WHERE metadata->>'correlation_id' = $1"
        " ORDER BY position",
        body["import_id"],
    )
    assert [row["type"] for row in rows] == [
        "clients.imported",
        "client.created",
        "transaction.posted",
        "deposit.posted",
        "client.archived",
    ]
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert rows[2]["payload"]["amount_minor"] == 1000
    assert rows[2]["payload"]["date"] == today
    assert rows[3]["payload"]["amount_minor"] == 550
    [yaw] = await get(service, business, "/api/v3/clients")
    assert (yaw["deposit_amount"], yaw["archived"]) == (5.5, True)
