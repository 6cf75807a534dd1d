"""The export route in-process: GET /api/v3/clients/clients-print/{bid} as an xlsx file,
read back with openpyxl and compared cell by cell with what was posted over HTTP (the
`book` fixture), whole or filtered by category."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from services.query_api import excel_export
from tests.integration.export_book import download
from tests.support.spreadsheets import exported_rows, sheet_numbers, sheet_xml


async def test_the_export_holds_one_exact_row_per_live_client_in_id_order(
    service: TestClient, business: dict[str, Any], book: dict[str, Any]
) -> None:
    """Proves the header, every cell of every row (negative balance, deposit, category,
    archived, created_at) and that the deleted client is absent, by downloading the
    book fixture's business and reading the file back with openpyxl."""
    response, raw = await download(service, business["bid"])
    assert response.status == 200
    assert exported_rows(raw) == book["rows"]
    assert "Gone Ltd" not in sheet_xml(raw)


async def test_money_cells_hold_the_exact_decimal_text_of_the_cents(
    service: TestClient, business: dict[str, Any], book: dict[str, Any]
) -> None:
    """Proves money is written exactly (0.07, not the 0.07000000000000001 a float
    would give) in numeric cells, by reading every number literally from the XML."""
    _, raw = await download(service, business["bid"])
    assert sheet_numbers(raw) == [
        *("1234.49", "1234.56", "0.07", "500"),
        *("-250.75", "100", "350.75", "0"),
        *("0.07", "0.07", "0", "0"),
        *("0", "0", "0", "0"),
    ]


async def test_text_that_looks_like_a_formula_or_an_error_stays_text(
    service: TestClient, business: dict[str, Any], book: dict[str, Any]
) -> None:
    """Proves a client's text never becomes a formula or an error value in the file,
    by exporting the names "=SUM(A1:A2)" and "#N/A" and finding no <f> element."""
    _, raw = await download(service, business["bid"])
    xml = sheet_xml(raw)
    assert "<f>" not in xml and 't="e"' not in xml
    assert "<t>=SUM(A1:A2)</t>" in xml and "<t>#N/A</t>" in xml


async def test_the_category_filter_exports_only_that_categorys_clients(
    service: TestClient, business: dict[str, Any], book: dict[str, Any]
) -> None:
    """Proves ?category_id= filters (and empty means no filter), by exporting the
    Wholesale category and then with an empty category_id."""
    query = f"?category_id={book['wholesale']['id']}"
    _, raw = await download(service, business["bid"], query)
    assert exported_rows(raw) == book["rows"][:1]
    _, everything = await download(service, business["bid"], "?category_id=")
    assert exported_rows(everything) == book["rows"]


async def test_an_unknown_category_id_gives_a_file_with_only_the_header(
    service: TestClient, business: dict[str, Any], book: dict[str, Any]
) -> None:
    """Proves a well-formed id of no category exports no rows (not an error), by
    exporting category 999999999999 of a business that has clients."""
    query = "?category_id=999999999999"
    response, raw = await download(service, business["bid"], query)
    assert response.status == 200
    assert exported_rows(raw) == []


async def test_a_non_numeric_category_id_is_a_422_in_the_laravel_shape(
    service: TestClient, business: dict[str, Any]
) -> None:
    """Proves the filter is validated as on the list route, by exporting with
    category_id=abc and reading the 422 body."""
    response, _ = await download(service, business["bid"], "?category_id=abc")
    assert response.status == 422
    assert await response.json() == {
        "message": "The given data was invalid.",
        "errors": {"category_id": ["The category id must be an integer."]},
    }


async def test_rows_split_across_many_chunks_come_out_once_each_in_order(
    service: TestClient,
    business: dict[str, Any],
    book: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Proves the keyset paging joins its chunks without losing or repeating a row,
    by exporting the four live clients two at a time and then one at a time."""
    for size in (2, 1):
        monkeypatch.setattr(excel_export, "CHUNK_ROWS", size)
        _, raw = await download(service, business["bid"])
        assert exported_rows(raw) == book["rows"]
