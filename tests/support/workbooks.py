"""Building xlsx files in tests with two writers (openpyxl and XlsxWriter), so that a
quirk of one library's output does not go unseen, and posting them as multipart."""

from __future__ import annotations

import io
from collections.abc import Sequence

import aiohttp
import xlsxwriter
from openpyxl import Workbook

HEADER = ["Name", "Phone Number", "Email-Address", "Address", "Upaid Amount"]
WRITERS = ("openpyxl", "xlsxwriter")


def openpyxl_file(rows: Sequence[Sequence[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def xlsxwriter_file(rows: Sequence[Sequence[object]]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    for row_index, row in enumerate(rows):
        for column, value in enumerate(row):
            if value is not None:
                sheet.write(row_index, column, value)
    book.close()
    return buffer.getvalue()


def workbook(writer: str, rows: Sequence[Sequence[object]]) -> bytes:
    return openpyxl_file(rows) if writer == "openpyxl" else xlsxwriter_file(rows)


def form(raw: bytes, **fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field(
        "customers",
        io.BytesIO(raw),
        filename="customers.xlsx",
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    for name, value in fields.items():
        data.add_field(name, value)
    return data
