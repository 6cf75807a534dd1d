"""The import route in-process: POST /api/clients-import and /api/v3/clients/import
with xlsx files built by the tests, checked against the read models over HTTP: the
clients and opening balances, the events, and every row error at once."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import asyncpg
import pytest
import xlsxwriter
from aiohttp.test_utils import TestClient

from tests.integration.import_calls import by_name, get, send
from tests.support.workbooks import HEADER, WRITERS, workbook


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
        "SELECT type, payload, recorded_at FROM events"
        " WHERE metadata->>'correlation_id' = $1"
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
    # Dated the UTC day the import was recorded, whenever the test runs.
    today = rows[2]["recorded_at"].astimezone(dt.UTC).date().isoformat()
    assert rows[2]["payload"]["amount_minor"] == 1000
    assert rows[2]["payload"]["date"] == today
    assert rows[3]["payload"]["amount_minor"] == 550
    [yaw] = await get(service, business, "/api/v3/clients")
    assert (yaw["deposit_amount"], yaw["archived"]) == (5.5, True)


@pytest.mark.parametrize("writer", WRITERS)
async def test_every_invalid_row_is_listed_and_nothing_is_created(
    service: TestClient, business: dict[str, Any], writer: str
) -> None:
    """Bad rows (no name, bad email, text amount, three decimals, negative deposit)
    answer 422 keyed by spreadsheet row and column, and not one client is created."""
    raw = workbook(
        writer,
        [
            [*HEADER, "Deposit Amount"],
            ["Good", None, None, None, "1,234.50", None],
            [None, "024", None, None, "5", None],
            ["Bad email", None, "not-an-email", None, None, None],
            ["Text", None, None, None, "twelve", None],
            ["Mills", None, None, None, "1.005", None],
            ["Refund", None, None, None, None, -3],
        ],
    )
    status, body = await send(service, business, raw)
    assert status == 422
    assert body == {
        "message": "The given data was invalid.",
        "errors": {
            "row 3: Name": ["is required"],
            "row 4: Email-Address": ["must be a valid email address"],
            "row 5: Upaid Amount": ["must be a number with at most two decimals"],
            "row 6: Upaid Amount": ["must be a number with at most two decimals"],
            "row 7: Deposit Amount": ["may not be negative"],
        },
    }
    assert await get(service, business, "/api/v3/clients") == []


async def test_errors_list_a_hundred_rows_and_count_the_rest(
    service: TestClient, business: dict[str, Any]
) -> None:
    """A file of 150 rows without names lists the first 100 bad rows and says how many
    more there are."""
    rows: list[list[object]] = [HEADER] + [[None, "024"] for _ in range(150)]
    status, body = await send(service, business, workbook("xlsxwriter", rows))
    assert status == 422
    assert len(body["errors"]) == 101
    assert body["errors"]["row 101: Name"] == ["is required"]
    assert body["errors"]["rows"] == ["and 50 more invalid rows not listed"]


async def test_a_missing_name_header_is_named(
    service: TestClient, business: dict[str, Any]
) -> None:
    """Headers match ignoring case and spaces, but a sheet without Name is a 422."""
    raw = workbook("openpyxl", [["phone number", " UPAID AMOUNT "], ["024", "5"]])
    status, body = await send(service, business, raw)
    assert (status, body["errors"]) == (
        422,
        {"customers": ["The sheet has no Name column"]},
    )


async def test_a_formula_without_a_cached_value_is_a_row_error(
    service: TestClient, business: dict[str, Any]
) -> None:
    """openpyxl writes formulas without cached values: such a cell is refused, not read
    as empty."""
    raw = workbook("openpyxl", [HEADER, ["Ama", None, None, None, "=1+1"]])
    status, body = await send(service, business, raw)
    assert (status, body["errors"]) == (
        422,
        {"row 2: Upaid Amount": ["is a formula without a cached value"]},
    )


async def test_a_formula_with_a_cached_value_is_read(
    service: TestClient, business: dict[str, Any]
) -> None:
    """XlsxWriter stores the formula's value given by the writer: that value counts."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, HEADER)
    sheet.write(1, 0, "Ama")
    sheet.write_formula(1, 4, "=10+2.5", None, 12.5)
    book.close()
    status, body = await send(service, business, buffer.getvalue())
    assert (status, body["total_unpaid"]) == (201, 12.5)


@pytest.mark.parametrize(
    "rows, message",
    [
        ([], "The sheet is empty"),
        ([HEADER], "The sheet has no data rows"),
        ([HEADER, [None, None]], "The sheet has no data rows"),
    ],
)
async def test_an_empty_sheet_or_header_only_is_refused(
    service: TestClient, business: dict[str, Any], rows: list[Any], message: str
) -> None:
    """A sheet with no rows, or only its header (and empty rows), is a 422."""
    status, body = await send(service, business, workbook("openpyxl", rows))
    assert (status, body["errors"]) == (422, {"customers": [message]})
