"""The export route in-process: GET /api/v3/clients/clients-print/{bid} as an xlsx file,
read back with openpyxl and compared cell by cell with what was posted over HTTP."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import uuid
from decimal import Decimal
from logging import WARNING
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from services.query_api import excel_export, queries
from tests.integration.scenarios import wait_until
from tests.support.environment import Environment
from tests.support.spreadsheets import exported_rows, sheet_numbers, sheet_xml

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NOT_FOUND = {"message": "Business not found"}


async def call(
    service: TestClient, business: dict[str, Any], path: str, body: object = None
) -> dict[str, Any]:
    """POST (or DELETE when body is None and the path says so) with the key; 2xx."""
    method = service.delete if path.startswith("DELETE ") else service.post
    response = await method(
        path.removeprefix("DELETE "), json=body, headers=business["headers"]
    )
    assert response.status in (200, 201), await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def create_client(
    service: TestClient, business: dict[str, Any], **fields: object
) -> dict[str, Any]:
    return await call(service, business, "/api/v3/clients", fields)


async def post(
    service: TestClient,
    business: dict[str, Any],
    client: dict[str, Any],
    kind: str,
    entry_type: str,
    amount: str,
) -> None:
    path = f"/api/v3/clients/{client['id']}/{kind}"
    await call(service, business, path, {"type": entry_type, "amount": amount})


async def download(
    service: TestClient, bid: str, query: str = ""
) -> tuple[ClientResponse, bytes]:
    """GET the export without any Authorization header."""
    response = await service.get(f"/api/v3/clients/clients-print/{bid}{query}")
    return response, await response.read()


def row(client: dict[str, Any], category: str, *money: str, archived: str) -> list[Any]:
    """The exported row expected for a client: balance, debit, credit, deposit."""
    balance, debit, credit, deposit = (Decimal(amount) for amount in money)
    return [
        client["business_name"],
        client["business_phone"],
        client["business_email"],
        client["business_address"],
        balance,
        category,
        debit,
        credit,
        deposit,
        archived,
        client["created_at"],
    ]


@pytest.fixture
async def book(service: TestClient, business: dict[str, Any]) -> dict[str, Any]:
    """A business with a categorised client, one in credit (a negative balance), an
    archived one whose name looks like a formula, one never posted to whose name holds
    a control character, and a deleted one; with the rows the export must hold."""
    wholesale = await call(
        service, business, "/api/v3/clients/category", {"name": "Wholesale"}
    )
    ama = await create_client(
        service,
        business,
        business_name="Ama Serwaa Stores",
        business_phone="+233 24 000 0001",
        business_email="ama@example.com",
        business_address="12 Ring Road, Accra",
        category_id=wholesale["id"],
    )
    await post(service, business, ama, "transactions", "debit", "1234.56")
    await post(service, business, ama, "transactions", "credit", "0.07")
    await post(service, business, ama, "deposits", "debit", "500")
    kofi = await create_client(service, business, business_name="Kofi Traders")
    await post(service, business, kofi, "transactions", "debit", "100")
    await post(service, business, kofi, "transactions", "credit", "350.75")
    formula = await create_client(
        service, business, business_name="=SUM(A1:A2)", business_address="#N/A"
    )
    await post(service, business, formula, "transactions", "debit", "0.07")
    await call(service, business, f"/api/v3/clients/{formula['id']}/archive", {})
    gone = await create_client(service, business, business_name="Gone Ltd")
    await call(service, business, f"DELETE /api/v3/clients/{gone['id']}")
    bell = await create_client(service, business, business_name="Bell\x07 & Tab\tCo")
    expected_bell = row(bell, "Uncategorised", "0", "0", "0", "0", archived="no")
    expected_bell[0] = "Bell\ufffd & Tab\tCo"
    return {
        "wholesale": wholesale,
        "rows": [
            row(ama, "Wholesale", "1234.49", "1234.56", "0.07", "500", archived="no"),
            row(kofi, "Uncategorised", "-250.75", "100", "350.75", "0", archived="no"),
            row(formula, "Uncategorised", "0.07", "0.07", "0", "0", archived="yes"),
            expected_bell,
        ],
    }


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


async def test_an_unknown_tampered_or_malformed_bid_is_a_404(
    service: TestClient, business: dict[str, Any], book: dict[str, Any]
) -> None:
    """Proves no bid but the exact one opens the export, by changing one character of
    a real bid, inventing one and sending characters no bid has, each a JSON 404."""
    bid = business["bid"]
    tampered = bid[:-1] + ("A" if bid[-1] != "A" else "B")
    for wrong in (tampered, "x" * 43, "%00", "a%2Fb", bid + "x", "é"):
        response, _ = await download(service, wrong)
        assert response.status == 404, wrong
        assert await response.json() == NOT_FOUND


async def test_each_bid_exports_only_its_own_business(
    service: TestClient,
    business: dict[str, Any],
    book: dict[str, Any],
    environment: Environment,
) -> None:
    """Proves a bid never reaches another business's data, by exporting a second
    business (with its own client) by its bid, and by the first's bid with the
    second's category id."""
    other = await provision_business(environment.settings, f"Other {uuid.uuid4()}")
    other["headers"] = {"Authorization": f"Bearer {other['api_key']}"}
    stranger = await create_client(service, other, business_name="Stranger & Co")
    _, raw = await download(service, other["bid"])
    assert exported_rows(raw) == [
        row(stranger, "Uncategorised", "0", "0", "0", "0", archived="no")
    ]
    categories = await service.get(
        "/api/v3/clients/categories", headers=other["headers"]
    )
    [other_category] = await categories.json()
    query = f"?category_id={other_category['id']}"
    _, crossed = await download(service, business["bid"], query)
    assert exported_rows(crossed) == []


async def test_the_download_is_an_xlsx_attachment_named_for_todays_utc_date(
    service: TestClient, business: dict[str, Any]
) -> None:
    """Proves the response headers (type, attachment name, exact length) and that no
    API key is needed, by downloading without an Authorization header."""
    before = dt.datetime.now(dt.UTC).date()
    response, raw = await download(service, business["bid"])
    after = dt.datetime.now(dt.UTC).date()
    assert response.status == 200
    assert response.headers["Content-Type"] == XLSX
    assert response.headers["Content-Disposition"] in {
        f'attachment; filename="clients-{day.isoformat()}.xlsx"'
        for day in (before, after)
    }
    assert int(response.headers["Content-Length"]) == len(raw)
    assert raw.startswith(b"PK") and exported_rows(raw) == []


async def test_other_routes_under_the_export_path_still_need_a_key(
    service: TestClient, business: dict[str, Any]
) -> None:
    """Proves the export's public path opens nothing else, by POSTing without a key to
    client routes that `clients-print` could be taken for as a client id."""
    for path in ("transactions", "deposits", "archive"):
        response = await service.post(f"/api/v3/clients/clients-print/{path}", json={})
        assert response.status == 401, path
        assert await response.json() == {"message": "Unauthenticated."}


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


async def test_an_export_leaves_no_temporary_file_behind(
    service: TestClient,
    business: dict[str, Any],
    book: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Proves the workbook and openpyxl's row file are removed once the download is
    sent, by pointing the temporary directory at an empty one and waiting (on a
    deadline: the handler removes its file just after the last byte) for it to be
    empty again."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    response, raw = await download(service, business["bid"])
    assert response.status == 200 and len(exported_rows(raw)) == 4

    async def emptied() -> bool:
        return os.listdir(tmp_path) == []

    await wait_until(emptied, "the export's temporary files to be removed")


async def test_an_export_that_fails_midway_leaves_no_temporary_file_behind(
    service: TestClient,
    business: dict[str, Any],
    book: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Proves a failed export cleans up its files and answers 500 in JSON, by making
    the third chunk's read fail after two rows were written to the workbook."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(excel_export, "CHUNK_ROWS", 1)
    reads = 0
    real_chunk = queries.export_chunk

    async def failing_chunk(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        if reads == 3:
            raise RuntimeError("the read model went away")
        return await real_chunk(*args)

    monkeypatch.setattr(queries, "export_chunk", failing_chunk)
    response, _ = await download(service, business["bid"])
    assert response.status == 500
    assert await response.json() == {"message": "Server Error"}
    assert os.listdir(tmp_path) == []  # removed before the error was answered


async def test_a_download_abandoned_midway_leaves_no_temporary_file_behind(
    service: TestClient,
    business: dict[str, Any],
    book: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Proves a client hanging up mid-download leaves no file, no error log and a
    service still exporting, by streaming the file in 64-byte pieces, closing the
    connection after the first one and waiting for the temporary directory to empty."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(excel_export, "READ_BYTES", 64)
    response = await service.get(f"/api/v3/clients/clients-print/{business['bid']}")
    assert response.status == 200
    await response.content.readexactly(64)
    response.close()

    async def emptied() -> bool:
        return os.listdir(tmp_path) == []

    await wait_until(emptied, "the abandoned export's files to be removed")
    again, raw = await download(service, business["bid"])
    assert again.status == 200 and exported_rows(raw) == book["rows"]
    assert [r.getMessage() for r in caplog.records if r.levelno >= WARNING] == []
