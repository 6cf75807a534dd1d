"""Hostile and broken .xlsx files for the security tests, built part by part: a sheet
claiming a huge dimension, a huge shared-strings table, a UTF-16 sheet, members with
a bad CRC or an unknown compression method, a large honest file."""

from __future__ import annotations

import base64
import io
import random
import struct
import zipfile

import xlsxwriter

from tests.support.workbooks import HEADER, openpyxl_file

SHEET = "xl/worksheets/sheet1.xml"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def replace_parts(raw: bytes, parts: dict[str, bytes]) -> bytes:
    """The workbook with some parts replaced (or added), every member deflated."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(raw)) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for name in source.namelist():
            if name not in parts:
                target.writestr(name, source.read(name))
        for name, content in parts.items():
            target.writestr(name, content)
    return buffer.getvalue()


def inline_cell(reference: str, text: str) -> str:
    return f'<c r="{reference}" t="inlineStr"><is><t>{text}</t></is></c>'


def sheet_xml(rows: str, dimension: str = "A1:B2", encoding: str = "UTF-8") -> str:
    return (
        f'<?xml version="1.0" encoding="{encoding}" standalone="yes"?>'
        f'<worksheet xmlns="{MAIN}"><dimension ref="{dimension}"/>'
        f"<sheetData>{rows}</sheetData></worksheet>"
    )


def declared_dimension(last_row: int) -> bytes:
    """A 2 KB file whose sheet declares A1:XFD1048576, with the header in row 1 and
    one customer in `last_row`: nothing in between."""
    rows = (
        f'<row r="1">{inline_cell("A1", "Name")}</row>'
        f'<row r="{last_row}">{inline_cell(f"A{last_row}", "Ama")}</row>'
    )
    sheet = sheet_xml(rows, dimension="A1:XFD1048576")
    return replace_parts(openpyxl_file([["x"]]), {SHEET: sheet.encode()})


def shared_strings(count: int) -> bytes:
    """A one-customer workbook whose shared-strings table holds `count` strings: the
    two the sheet uses ("Name", "Ama"), then filler nobody refers to."""
    filler = "".join(f"<si><t>{n}</t></si>" for n in range(count - 2))
    strings = f"<si><t>Name</t></si><si><t>Ama</t></si>{filler}"
    table = f'<sst xmlns="{MAIN}" count="{count}" uniqueCount="{count}">{strings}</sst>'
    raw = xlsxwriter_book([["Name"], ["Ama"]])
    return replace_parts(raw, {"xl/sharedStrings.xml": table.encode()})


def utf16_formula() -> bytes:
    """Ama's Upaid Amount is a formula without a cached value, in a UTF-16 sheet."""
    rows = (
        f'<row r="1">{inline_cell("A1", "Name")}{inline_cell("B1", "Upaid Amount")}'
        f'</row><row r="2">{inline_cell("A2", "Ama")}<c r="B2"><f>1+1</f></c></row>'
    )
    sheet = sheet_xml(rows, encoding="UTF-16").encode("utf-16")
    return replace_parts(openpyxl_file([["x"]]), {SHEET: sheet})


def without_workbook_type() -> bytes:
    """[Content_Types].xml that declares no workbook part (openpyxl: OSError)."""
    types = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        "</Types>"
    )
    good = openpyxl_file([HEADER, ["Ama"]])
    return replace_parts(good, {"[Content_Types].xml": types.encode()})


def bad_crc() -> bytes:
    """The sheet's stored CRC-32 does not match its content."""
    raw = stored(openpyxl_file([HEADER, ["Ama"]]))
    offset = _local_header_offset(raw, SHEET)
    crc_at = offset + 14
    (crc,) = struct.unpack_from("<I", raw, crc_at)
    patched = struct.pack("<I", crc ^ 0xFFFFFFFF)
    raw = raw[:crc_at] + patched + raw[crc_at + 4 :]
    return _patch_central(raw, SHEET, 16, patched)


def compression_method_9() -> bytes:
    """The sheet claims Deflate64 (method 9), which zipfile cannot inflate."""
    raw = stored(openpyxl_file([HEADER, ["Ama"]]))
    offset = _local_header_offset(raw, SHEET)
    method = struct.pack("<H", 9)
    raw = raw[: offset + 8] + method + raw[offset + 10 :]
    return _patch_central(raw, SHEET, 10, method)


def stored(raw: bytes) -> bytes:
    """The same workbook with every member stored (not compressed)."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(raw)) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as target,
    ):
        for name in source.namelist():
            target.writestr(name, source.read(name))
    return buffer.getvalue()


def _local_header_offset(raw: bytes, name: str) -> int:
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        return archive.getinfo(name).header_offset


def _patch_central(raw: bytes, name: str, field_at: int, value: bytes) -> bytes:
    """Write `value` at `field_at` of the central directory entry naming `name`."""
    entry = raw.index(b"PK\x01\x02", raw.index(b"PK\x05\x06") - 4096)
    while True:
        (name_length,) = struct.unpack_from("<H", raw, entry + 28)
        if raw[entry + 46 : entry + 46 + name_length] == name.encode():
            break
        entry = raw.index(b"PK\x01\x02", entry + 4)
    at = entry + field_at
    return raw[:at] + value + raw[at + len(value) :]


def xlsxwriter_book(rows: list[list[object]]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    for index, row in enumerate(rows):
        sheet.write_row(index, 0, row)
    book.close()
    return buffer.getvalue()


def largest_allowed(rows: int = 100_000) -> bytes:
    """The documented maximum: 100,000 customers in a file of about 20 MiB (random
    text in an ignored Notes column keeps it from compressing)."""
    noise = random.Random(9)
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["Name", "Phone Number", "Notes"])
    for row in range(1, rows + 1):
        text = base64.b64encode(noise.randbytes(150)).decode()
        sheet.write_row(row, 0, [f"Client {row}", f"0244{row:06d}", text])
    book.close()
    return buffer.getvalue()
