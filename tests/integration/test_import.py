"""The import route in-process: POST /api/clients-import and /api/v3/clients/import
with xlsx files built by the tests, checked against the read models over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import zipfile
from typing import Any

import aio_pika
import asyncpg
import pytest
import xlsxwriter
from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from tests.integration.scenarios import wait_until
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


OLE_HEADER = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504)


@pytest.mark.parametrize(
    "raw",
    [
        bytes(range(256)) * 4,
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
        b"Name,Phone Number,Upaid Amount\nAma,024,5\n",
        OLE_HEADER,
        b"PK\x03\x04 not really a zip",
    ],
    ids=["random", "pdf", "csv", "xls", "broken-zip"],
)
async def test_a_file_that_is_not_xlsx_is_unsupported(
    service: TestClient, business: dict[str, Any], raw: bytes
) -> None:
    """Random bytes, a PDF, a CSV renamed and an old .xls answer 415 saying an .xlsx
    workbook was expected."""
    status, body = await send(service, business, raw)
    assert (status, body) == (
        415,
        {"message": "The file must be an Excel workbook (.xlsx)"},
    )


async def test_a_zip_that_is_not_a_workbook_is_unsupported(
    service: TestClient, business: dict[str, Any]
) -> None:
    """A zip archive without xl/workbook.xml is not an xlsx file either."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hello")
    status, body = await send(service, business, buffer.getvalue())
    assert status == 415


async def test_a_zip_bomb_is_refused_before_it_is_inflated(
    service: TestClient, business: dict[str, Any]
) -> None:
    """A workbook whose sheet inflates to 300 MiB from a few hundred KiB is a 422,
    decided from the archive's declared sizes."""
    good = workbook("openpyxl", [HEADER, ["Ama"]])
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(good)) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bomb,
    ):
        for item in source.infolist():
            bomb.writestr(item.filename, source.read(item.filename))
        with bomb.open("xl/worksheets/padding.xml", "w") as member:
            block = b" " * (1024 * 1024)
            for _ in range(300):
                member.write(block)
    assert len(buffer.getvalue()) < 2 * 1024 * 1024
    status, body = await send(service, business, buffer.getvalue())
    assert (status, body["errors"]) == (
        422,
        {"customers": ["The workbook inflates past a sane size"]},
    )


async def test_a_file_over_twenty_mebibytes_is_too_large(
    service: TestClient, business: dict[str, Any]
) -> None:
    """A 21 MiB upload answers 413 (the JSON bound of 1 MiB does not apply to it)."""
    raw = b"PK\x03\x04" + bytes(21 * 1024 * 1024)
    status, body = await send(service, business, raw)
    assert (status, body) == (
        413,
        {"message": "The file is too large (20 MiB at most)"},
    )


async def test_a_json_body_is_refused_with_what_is_expected(
    service: TestClient, business: dict[str, Any]
) -> None:
    """The seed's JSON sample with a file name answers 415 asking for multipart."""
    response = await service.post(
        "/api/clients-import",
        json={"customers": "customers_list.xlsx", "category_id": "CAT-123"},
        headers=business["headers"],
    )
    assert response.status == 415
    assert "multipart/form-data" in (await response.json())["message"]


async def test_a_part_header_aiohttp_cannot_parse_is_a_400_not_a_500(
    service: TestClient, business: dict[str, Any], pool: asyncpg.Pool
) -> None:
    """A form field whose name holds bytes that are not ASCII (schemathesis sent one)
    made aiohttp's multipart reader raise InvalidHeader, which escaped as a 500."""
    before = await pool.fetchval("SELECT count(*) FROM events")
    boundary = "b0undary"
    raw = (
        f"--{boundary}\r\n".encode()
        + 'Content-Disposition: form-data; name="\u00c2\u00fe\x05"\r\n\r\n'.encode()
        + b"x\r\n"
        + f"--{boundary}\r\n".encode()
        + b'Content-Disposition: form-data; name="customers"\r\n\r\n'
        + b"PK\r\n"
        + f"--{boundary}--\r\n".encode()
    )
    response = await service.post(
        IMPORT,
        data=raw,
        headers={
            **business["headers"],
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert response.status == 400
    assert await response.json() == {
        "message": "The request body is not valid multipart/form-data"
    }
    assert await pool.fetchval("SELECT count(*) FROM events") == before


async def test_the_import_needs_an_api_key(service: TestClient) -> None:
    """Without a key the import answers 401."""
    raw = workbook("openpyxl", [HEADER, ["Ama"]])
    response = await service.post(IMPORT, data=form(raw))
    assert response.status == 401


async def category(service: TestClient, business: dict[str, Any], name: str) -> Any:
    response = await service.post(
        "/api/v3/clients/category", json={"name": name}, headers=business["headers"]
    )
    assert response.status == 201, await response.text()
    return await response.json()


async def test_rows_go_to_the_form_category_or_their_own_by_name(
    service: TestClient, business: dict[str, Any]
) -> None:
    """category_id places the rows; a Category cell overrides it, matching an existing
    category ignoring case or creating a missing one once, with exact counts."""
    vip = await category(service, business, "VIP")
    raw = workbook(
        "xlsxwriter",
        [
            [*HEADER, "Category"],
            ["Ama", None, None, None, None, None],
            ["Kofi", None, None, None, None, " vip "],
            ["Esi", None, None, None, None, "Wholesale"],
            ["Yaw", None, None, None, None, "WHOLESALE"],
        ],
    )
    status, body = await send(service, business, raw, category_id=str(vip["id"]))
    assert (status, body["category_id"]) == (201, vip["id"])
    clients = by_name(await get(service, business, "/api/v3/clients"))
    assert {name: client["category"] for name, client in clients.items()} == {
        "Ama": "VIP",
        "Kofi": "VIP",
        "Esi": "Wholesale",
        "Yaw": "Wholesale",
    }
    counts = {
        item["name"]: item["customer_count"]
        for item in await get(service, business, "/api/v3/clients/categories")
    }
    assert counts == {"Uncategorised": 0, "VIP": 2, "Wholesale": 2}


@pytest.mark.parametrize("value", ["999999999", "CAT-123"])
async def test_an_unknown_category_id_is_refused(
    service: TestClient, business: dict[str, Any], value: str
) -> None:
    """A category_id that is not one of the business's categories is a 422."""
    raw = workbook("openpyxl", [HEADER, ["Ama"]])
    status, body = await send(service, business, raw, category_id=value)
    assert (status, body["errors"]) == (
        422,
        {"category_id": ["The selected category id is invalid."]},
    )
    assert await get(service, business, "/api/v3/clients") == []


async def test_the_same_file_twice_is_a_conflict_unless_allowed(
    service: TestClient, business: dict[str, Any], environment: Any
) -> None:
    """A second upload of the same content answers 409 with the first import's id;
    allow_duplicate=true imports it again; another business may import it freely."""
    raw = workbook("openpyxl", [HEADER, ["Ama", None, None, None, "5"]])
    status, first = await send(service, business, raw)
    assert status == 201
    status, again = await send(service, business, raw)
    assert (status, again["import_id"]) == (409, first["import_id"])
    status, allowed = await send(service, business, raw, allow_duplicate="true")
    assert status == 201 and allowed["import_id"] != first["import_id"]
    assert len(await get(service, business, "/api/v3/clients")) == 2
    other = await provision_business(environment.settings, "Other")
    other["headers"] = {"Authorization": f"Bearer {other['api_key']}"}
    status, _ = await send(service, other, raw)
    assert status == 201


async def test_an_idempotency_key_replays_the_first_response(
    service: TestClient, business: dict[str, Any]
) -> None:
    """A retry with the same key and file returns the first answer and writes nothing;
    the same key with another file is a 422."""
    raw = workbook("openpyxl", [HEADER, ["Ama", None, None, None, "5"]])
    key = {"Idempotency-Key": "import-1"}
    status, first = await send(service, business, raw, headers=key)
    assert status == 201
    response = await service.post(
        IMPORT, data=form(raw), headers={**business["headers"], **key}
    )
    assert (response.status, await response.json()) == (201, first)
    assert response.headers["Idempotent-Replayed"] == "true"
    other = workbook("openpyxl", [HEADER, ["Kofi"]])
    status, body = await send(service, business, other, headers=key)
    assert (status, list(body["errors"])) == (422, ["Idempotency-Key"])
    assert len(await get(service, business, "/api/v3/clients")) == 1


def many_rows(count: int) -> list[list[object]]:
    rows: list[list[object]] = [HEADER]
    rows.extend([f"Client {n}", None, None, None, "1.01"] for n in range(count))
    return rows


async def test_a_large_import_answers_202_and_reports_progress_until_done(
    service: TestClient, business: dict[str, Any]
) -> None:
    """6,000 rows commit before the answer, which is 202 with a status URL; the status
    reports every row committed, and rows visible until it says done."""
    raw = workbook("xlsxwriter", many_rows(6_000))
    status, body = await send(service, business, raw)
    assert status == 202, body
    assert (body["imported"], body["total_unpaid"]) == (6_000, 6060)
    url = body["status_url"]
    assert url == f"/api/v3/clients/imports/{body['import_id']}"
    report = await get(service, business, url)
    assert report["rows_committed"] == 6_000
    assert 0 <= report["rows_visible"] <= 6_000

    async def done() -> bool:
        report = await get(service, business, url)
        return bool(report["status"] == "done")

    await wait_until(done, "the import to be visible", timeout_s=60)
    assert await get(service, business, url) == {
        "import_id": body["import_id"],
        "status": "done",
        "rows_committed": 6_000,
        "rows_visible": 6_000,
    }
    summary = await get(service, business, "/api/v3/clients/summary")
    assert (summary["customer_count"], summary["total_balance"]) == (6_000, 6060)


async def test_another_business_cannot_see_an_import_status(
    service: TestClient, business: dict[str, Any], environment: Any
) -> None:
    """The status of an import is a 404 for another business's key."""
    raw = workbook("openpyxl", [HEADER, ["Ama"]])
    status, body = await send(service, business, raw)
    other = await provision_business(environment.settings, "Other")
    response = await service.get(
        f"/api/v3/clients/imports/{body['import_id']}",
        headers={"Authorization": f"Bearer {other['api_key']}"},
    )
    assert response.status == 404


async def test_an_import_id_that_cannot_be_one_is_a_404(
    service: TestClient, business: dict[str, Any]
) -> None:
    """An import id holding a NUL byte (which PostgreSQL refuses in text) or one far
    too long is a 404 like any unknown id, never a 500."""
    for import_id in ("%00", "a%00b", "x" * 5000):
        response = await service.get(
            f"/api/v3/clients/imports/{import_id}", headers=business["headers"]
        )
        assert (response.status, await response.json()) == (
            404,
            {"message": "Import not found"},
        ), import_id


async def test_more_than_a_hundred_thousand_rows_are_refused(
    service: TestClient, business: dict[str, Any]
) -> None:
    """A sheet of 100,001 data rows is a 422 and creates nothing."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "constant_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, HEADER)
    for row in range(1, 100_002):
        sheet.write_string(row, 0, "C")
    book.close()
    status, body = await send(service, business, buffer.getvalue())
    assert (status, body["errors"]) == (
        422,
        {"customers": ["The sheet has more than 100000 rows"]},
    )
    assert await get(service, business, "/api/v3/clients") == []


async def command(
    service: TestClient, business: dict[str, Any], path: str, body: object
) -> Any:
    response = await service.post(path, json=body, headers=business["headers"])
    assert response.status in (200, 201), await response.text()
    return await response.json()


async def make_book(service: TestClient, business: dict[str, Any]) -> None:
    """Clients with a debt, a credit balance, a deposit, categories and an archive."""
    wholesale = await category(service, business, "Wholesale")
    clients = "/api/v3/clients"
    ama = await command(
        service,
        business,
        clients,
        {
            "business_name": "Ama Stores",
            "business_phone": "+233 24 000 0001",
            "business_email": "ama@example.com",
            "business_address": "12 Ring Road, Accra",
            "category_id": wholesale["id"],
        },
    )
    kofi = await command(service, business, clients, {"business_name": "Kofi"})
    esi = await command(service, business, clients, {"business_name": "Esi Ltd"})
    await command(service, business, clients, {"business_name": "Yaw"})
    postings = [
        (ama, "transactions", "debit", "1234.56"),
        (ama, "transactions", "credit", "0.07"),
        (ama, "deposits", "debit", "500"),
        (kofi, "transactions", "debit", "100"),
        (kofi, "transactions", "credit", "350.75"),
        (esi, "transactions", "debit", "0.07"),
        (esi, "deposits", "debit", "20.10"),
    ]
    for client, kind, entry_type, amount in postings:
        path = f"{clients}/{client['id']}/{kind}"
        await command(service, business, path, {"type": entry_type, "amount": amount})
    await command(service, business, f"{clients}/{esi['id']}/archive", {})


def comparable(clients: list[dict[str, Any]]) -> list[tuple[object, ...]]:
    fields = (
        "business_name",
        "business_phone",
        "business_email",
        "business_address",
        "unformated_balance",
        "balance",
        "deposit_amount",
        "category",
        "archived",
    )
    return sorted(tuple(client[field] for field in fields) for client in clients)


async def test_an_export_imported_into_another_business_gives_the_same_book(
    service: TestClient, business: dict[str, Any], environment: Any
) -> None:
    """Export business A, import the file into a new business B: the clients, their
    balances (negative among them), deposits, categories and archived flags match."""
    await make_book(service, business)
    response = await service.get(f"/api/v3/clients/clients-print/{business['bid']}")
    assert response.status == 200
    raw = await response.read()
    target = await provision_business(environment.settings, "Target")
    target["headers"] = {"Authorization": f"Bearer {target['api_key']}"}
    status, body = await send(service, target, raw)
    assert status == 201, body
    assert (body["imported"], body["total_unpaid"]) == (4, 983.81)
    source = await get(service, business, "/api/v3/clients")
    copied = await get(service, target, "/api/v3/clients")
    assert comparable(copied) == comparable(source)
    assert [
        client["balance"] for client in copied if client["business_name"] == "Kofi"
    ] == ["-250.75"]
    summary = await get(service, target, "/api/v3/clients/summary")
    assert summary == await get(service, business, "/api/v3/clients/summary")


async def test_the_same_file_uploaded_twice_at_once_is_imported_once(
    service: TestClient, business: dict[str, Any]
) -> None:
    """Two concurrent uploads of one file: one answers 201, the other 409 naming it,
    and the clients exist once."""
    raw = workbook("xlsxwriter", [HEADER, ["Ama", None, None, None, "5"]])
    answers = await asyncio.gather(
        send(service, business, raw), send(service, business, raw)
    )
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201, 409]
    ids = {body["import_id"] for _, body in answers}
    assert len(ids) == 1
    assert len(await get(service, business, "/api/v3/clients")) == 1


async def test_a_zip_with_a_broken_workbook_is_refused(
    service: TestClient, business: dict[str, Any]
) -> None:
    """A zip holding xl/workbook.xml that is not a workbook answers 422, not 500."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<not a workbook")
        archive.writestr("[Content_Types].xml", "garbage")
    status, body = await send(service, business, buffer.getvalue())
    assert (status, body["errors"]) == (
        422,
        {"customers": ["The workbook could not be read"]},
    )


async def test_prefer_respond_async_answers_202_with_a_status_url(
    service: TestClient, business: dict[str, Any]
) -> None:
    """A small import sent with Prefer: respond-async answers 202 with its status URL
    right after the commit, and the status then reaches done."""
    raw = workbook("openpyxl", [HEADER, ["Ama", None, None, None, "5"]])
    headers = {"Prefer": "respond-async"}
    status, body = await send(service, business, raw, headers=headers)
    assert (status, body["imported"]) == (202, 1)

    async def done() -> bool:
        report = await get(service, business, body["status_url"])
        return bool(report["status"] == "done" and report["rows_visible"] == 1)

    await wait_until(done, "the import to be visible")


async def test_the_import_events_reach_rabbitmq_in_order(
    service: TestClient, business: dict[str, Any], environment: Any
) -> None:
    """A subscriber bound to the business receives clients.imported, then the client's
    created and opening posting events, each routed by business and type (after the
    business's own "Uncategorised" category.created, which is skipped)."""
    connection = await aio_pika.connect(environment.settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        exchange = await channel.get_exchange(environment.settings.exchange)
        await queue.bind(exchange, routing_key=f"{business['business_id']}.#")
        raw = workbook("xlsxwriter", [HEADER, ["Ama", None, None, None, "-5"]])
        status, _ = await send(service, business, raw)
        assert status == 201
        keys: list[str] = []

        async def received() -> bool:
            message = await queue.get(fail=False, no_ack=True)
            key = (message.routing_key or "") if message is not None else ""
            if key and not key.endswith(".category.created"):  # the business's own
                keys.append(key)
            return len(keys) == 3

        await wait_until(received, "three messages")
    finally:
        await connection.close()
    prefix = f"{business['business_id']}."
    assert keys == [
        prefix + "clients.imported",
        prefix + "client.created",
        prefix + "transaction.posted",
    ]
