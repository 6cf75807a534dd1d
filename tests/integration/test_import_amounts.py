"""Exact money in the import, through POST /api/v3/clients/import: signs, zero, the
bounds of 999,999,999,999.99 and a spreadsheet's float artifacts, each cell read as
Decimal(str(value)) (numbers) or as strict text, then checked to the cent."""

from __future__ import annotations

import io
from typing import Any

import asyncpg
import pytest
import xlsxwriter
from aiohttp.test_utils import TestClient

from tests.integration.import_calls import by_name, get, send
from tests.support.workbooks import HEADER, WRITERS, workbook

AMOUNT = "must be a number with at most two decimals"
TOO_BIG = "may not be greater than 999999999999.99"


async def _events(pool: asyncpg.Pool, import_id: str) -> list[tuple[str, int | None]]:
    rows = await pool.fetch(
        "SELECT type, (payload->>'amount_minor')::bigint AS minor FROM events"
        " WHERE metadata->>'correlation_id' = $1 ORDER BY position",
        import_id,
    )
    return [(row["type"], row["minor"]) for row in rows]


@pytest.mark.parametrize("writer", WRITERS)
async def test_a_text_amount_with_two_minus_signs_is_refused(
    service: TestClient, business: dict[str, Any], writer: str
) -> None:
    """A text cell "--5" (once read as +5.00) and "-5" beside it: the file answers 422
    naming only the "--5" row, and no client is created."""
    raw = workbook(
        writer,
        [[*HEADER, "Deposit Amount"], ["Ama", None, None, None, "-5", None]]
        + [
            ["Kofi", None, None, None, "--5", None],
            ["Esi", None, None, None, None, "--5"],
        ],
    )
    status, body = await send(service, business, raw)
    assert (status, body) == (
        422,
        {
            "message": "The given data was invalid.",
            "errors": {
                "row 3: Upaid Amount": [AMOUNT],
                "row 4: Deposit Amount": [AMOUNT],
            },
        },
    )
    assert await get(service, business, "/api/v3/clients") == []


@pytest.mark.parametrize("writer", WRITERS)
async def test_zero_as_text_means_nothing_like_the_number_zero(
    service: TestClient, business: dict[str, Any], pool: asyncpg.Pool, writer: str
) -> None:
    """Text cells "0", "0.00" and "-0" and the number 0, as unpaid and deposit amounts,
    import the clients with nothing posted: only the created events are stored."""
    raw = workbook(
        writer,
        [
            [*HEADER, "Deposit Amount"],
            ["Zero", None, None, None, "0", "0.00"],
            ["Cents", None, None, None, "0.00", "0"],
            ["Minus", None, None, None, "-0", 0],
            ["Number", None, None, None, 0, 0],
        ],
    )
    status, body = await send(service, business, raw)
    assert (status, body["imported"], body["total_unpaid"]) == (201, 4, 0)
    assert (
        await _events(pool, body["import_id"])
        == [("clients.imported", None)] + [("client.created", None)] * 4
    )
    clients = by_name(await get(service, business, "/api/v3/clients"))
    assert {
        name: (c["balance"], c["deposit_amount"]) for name, c in clients.items()
    } == {name: ("0.00", 0) for name in ("Zero", "Cents", "Minus", "Number")}


@pytest.mark.parametrize("writer", WRITERS)
async def test_amounts_at_the_bounds_are_imported_to_the_cent(
    service: TestClient, business: dict[str, Any], pool: asyncpg.Pool, writer: str
) -> None:
    """±999,999,999,999.99 as numeric cells and as text, and a deposit at the bound,
    import exactly: the stored minor units and the balances read back are exact."""
    raw = workbook(
        writer,
        [
            [*HEADER, "Deposit Amount"],
            ["Top", None, None, None, 999999999999.99, 999999999999.99],
            ["Bottom", None, None, None, -999999999999.99, None],
            ["Top text", None, None, None, "999,999,999,999.99", None],
            ["Bottom text", None, None, None, "-999999999999.99", None],
        ],
    )
    status, body = await send(service, business, raw)
    assert (status, body["imported"], body["total_unpaid"]) == (201, 4, 0)
    stored = await _events(pool, body["import_id"])
    assert [minor for kind, minor in stored if minor is not None] == [
        99_999_999_999_999
    ] * 5
    clients = by_name(await get(service, business, "/api/v3/clients"))
    assert {name: c["balance"] for name, c in clients.items()} == {
        "Top": "999,999,999,999.99",
        "Bottom": "-999,999,999,999.99",
        "Top text": "999,999,999,999.99",
        "Bottom text": "-999,999,999,999.99",
    }
    assert clients["Top"]["deposit_amount"] == 999999999999.99


@pytest.mark.parametrize("writer", WRITERS)
async def test_one_cent_past_the_bounds_is_refused(
    service: TestClient, business: dict[str, Any], writer: str
) -> None:
    """1,000,000,000,000.00, as a number, as text and negative, and as a deposit,
    answers 422 naming the bound for every row, and nothing is created."""
    raw = workbook(
        writer,
        [
            [*HEADER, "Deposit Amount"],
            ["A", None, None, None, 1000000000000.0, None],
            ["B", None, None, None, "1,000,000,000,000.00", None],
            ["C", None, None, None, -1000000000000.0, None],
            ["D", None, None, None, "-1000000000000.00", None],
            ["E", None, None, None, None, 1000000000000.0],
        ],
    )
    status, body = await send(service, business, raw)
    assert (status, body["errors"]) == (
        422,
        {
            "row 2: Upaid Amount": [TOO_BIG],
            "row 3: Upaid Amount": [TOO_BIG],
            "row 4: Upaid Amount": [TOO_BIG],
            "row 5: Upaid Amount": [TOO_BIG],
            "row 6: Deposit Amount": [TOO_BIG],
        },
    )
    assert await get(service, business, "/api/v3/clients") == []


def _formulas(cells: list[tuple[str, str, float]]) -> bytes:
    """A workbook whose amounts are formulas with the cached values given, as Excel
    stores them (XlsxWriter writes a formula's value with repr, all 17 digits)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, HEADER)
    for row, (name, formula, value) in enumerate(cells, start=1):
        sheet.write(row, 0, name)
        sheet.write_formula(row, 4, formula, None, value)
    book.close()
    return buffer.getvalue()


async def test_a_float_artifact_cached_by_a_formula_is_refused_not_rounded(
    service: TestClient, business: dict[str, Any]
) -> None:
    """=0.1+0.2 caches 0.30000000000000004: read Decimal(str(value)) it has more than
    two decimals, so the row is refused (money is never rounded on the way in), and
    nothing is created; the README says to round in the sheet."""
    raw = _formulas([("Ama", "=0.1+0.2", 0.1 + 0.2), ("Kofi", "=1.1*3", 1.1 * 3)])
    status, body = await send(service, business, raw)
    assert (status, body["errors"]) == (
        422,
        {"row 2: Upaid Amount": [AMOUNT], "row 3: Upaid Amount": [AMOUNT]},
    )
    assert await get(service, business, "/api/v3/clients") == []


async def test_a_rounded_formula_result_is_imported_exactly(
    service: TestClient, business: dict[str, Any], pool: asyncpg.Pool
) -> None:
    """=ROUND(0.1+0.2,2) caches 0.3, which is 30 minor units exactly, and 0.1+0.2+0.7
    happens to cache 1.0: both import, the total is exact."""
    raw = _formulas(
        [("Ama", "=ROUND(0.1+0.2,2)", 0.3), ("Kofi", "=0.1+0.2+0.7", 0.1 + 0.2 + 0.7)]
    )
    status, body = await send(service, business, raw)
    assert (status, body["total_unpaid"]) == (201, 1.3)
    stored = await _events(pool, body["import_id"])
    assert [minor for kind, minor in stored if kind == "transaction.posted"] == [
        30,
        100,
    ]
