"""Reading downloaded xlsx files back in tests: cells with their types and formats,
and the literal numbers written in the sheet's XML."""

from __future__ import annotations

import io
import re
import zipfile
from decimal import Decimal

import msgspec
from openpyxl import load_workbook

SHEET_XML = "xl/worksheets/sheet1.xml"
EXPORT_HEADER = [
    "Name",
    "Phone Number",
    "Email-Address",
    "Address",
    "Upaid Amount",
    "Category",
    "Total Debit",
    "Total Credit",
    "Deposit Amount",
    "Archived",
    "Created At",
]
MONEY_COLUMNS = (4, 6, 7, 8)


class ReadCell(msgspec.Struct, frozen=True):
    value: object
    data_type: str
    number_format: str


def read_cells(raw: bytes) -> list[list[ReadCell]]:
    """Every row of the only sheet, read with openpyxl in read-only mode."""
    book = load_workbook(io.BytesIO(raw), read_only=True)
    try:
        [sheet] = book.worksheets
        return [
            [ReadCell(c.value, c.data_type, c.number_format) for c in row]
            for row in sheet.iter_rows()
        ]
    finally:
        book.close()


def exported_rows(raw: bytes) -> list[list[object]]:
    """The data rows after the exact export header, money columns as Decimal (each
    one asserted to be a numeric cell formatted `#,##0.00`), empty text as ""."""
    header, *rows = read_cells(raw)
    assert [cell.value for cell in header] == EXPORT_HEADER
    values: list[list[object]] = []
    for row in rows:
        assert len(row) == len(EXPORT_HEADER)
        for column in MONEY_COLUMNS:
            assert (row[column].data_type, row[column].number_format) == (
                "n",
                "#,##0.00",
            )
        values.append(
            [
                Decimal(str(cell.value))
                if index in MONEY_COLUMNS
                else ("" if cell.value is None else cell.value)
                for index, cell in enumerate(row)
            ]
        )
    return values


def sheet_xml(raw: bytes) -> str:
    """The only sheet's XML as written."""
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        return archive.read(SHEET_XML).decode()


def sheet_numbers(raw: bytes) -> list[str]:
    """The literal text of every number value in the sheet's XML, in order."""
    return re.findall(r"<v>([^<]*)</v>", sheet_xml(raw))
