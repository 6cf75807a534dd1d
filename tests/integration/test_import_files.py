"""The import route in-process, on what is not a workbook it can read: other file
kinds, zips that are not workbooks or are bombs, files over 20 MiB, JSON bodies,
broken multipart headers, and no API key."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.import_calls import IMPORT, send
from tests.support.workbooks import HEADER, form, workbook

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
