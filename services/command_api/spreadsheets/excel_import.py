"""Hop 1 for spreadsheets: read an uploaded .xlsx and validate every row.

Runs in a worker process (parse_pool.py): openpyxl parses synchronously, and a file
crafted to burn CPU or memory must be stoppable. The archive's parts are checked
before openpyxl opens it (workbook_parts.py). Cells go Decimal(str(value)) ->
exactness check -> minor units, here at the boundary.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgspec
from openpyxl import load_workbook

from services.command_api.spreadsheets.workbook_parts import (
    check_shared_strings,
    check_sizes,
    formula_cells,
    open_archive,
)
from shared.commands import ImportRow
from shared.errors import ValidationFailed, invalid
from shared.money import AmountError, parse_signed_amount

ROWS_MAX = 100_000
ERROR_ROWS_MAX = 100
TEXT_LENGTH_MAX = 255
AMOUNT_MESSAGE = "must be a number with at most two decimals"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_TEXT_FIELDS = ("business_name", "business_phone", "business_email", "business_address")
# Header (lower case, stripped) -> field. Both spellings of the unpaid column count.
HEADERS = {
    "name": "business_name",
    "phone number": "business_phone",
    "email-address": "business_email",
    "address": "business_address",
    "upaid amount": "unpaid",
    "unpaid amount": "unpaid",
    "category": "category",
    "deposit amount": "deposit",
    "archived": "archived",
}


class Column(msgspec.Struct, frozen=True):
    index: int
    label: str


class RowErrors(msgspec.Struct):
    """Errors of the bad rows, keyed "row N: Column"; only the first 100 rows listed."""

    errors: dict[str, list[str]] = msgspec.field(default_factory=dict)
    rows: int = 0

    def add(self, row_number: int, found: dict[str, str]) -> None:
        self.rows += 1
        if self.rows <= ERROR_ROWS_MAX:
            for label, message in found.items():
                self.errors[f"row {row_number}: {label}"] = [message]

    def raise_any(self) -> None:
        if self.rows > ERROR_ROWS_MAX:
            more = self.rows - ERROR_ROWS_MAX
            self.errors["rows"] = [f"and {more} more invalid rows not listed"]
        if self.rows:
            raise ValidationFailed(self.errors)


class SheetBounds(msgspec.Struct, frozen=True, kw_only=True):
    """What a sheet may hold beyond its data rows (settings, see shared/config.py)."""

    blank_rows_max: int = 100_000
    shared_strings_max: int = 1_000_000


def parse(raw: bytes, bounds: SheetBounds) -> list[ImportRow]:
    """Every data row of the workbook's first sheet, validated; all or nothing.

    Runs in a worker process with CPU, memory and time limits (parse_pool.py). A file
    that is not a zip with a workbook is a 415; anything openpyxl or zipfile raises on
    a broken one is mapped to a 422 at the worker's edge (sheet_worker.py)."""
    with open_archive(raw) as archive:
        check_sizes(archive)
        check_shared_strings(archive, bounds.shared_strings_max)
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        try:
            if not book.worksheets:
                raise invalid("customers", "The workbook has no sheet")
            sheet = book.worksheets[0]
            # The declared <dimension> is the file's claim, not its content: read
            # only the rows and cells the sheet holds (A1:XFD1048576 made openpyxl
            # pad every row to 16,384 cells).
            sheet.reset_dimensions()
            uncached = formula_cells(archive, sheet._worksheet_path)
            return validate(sheet_rows(sheet), uncached, bounds.blank_rows_max)
        finally:
            book.close()


def sheet_rows(sheet: Any) -> Iterator[tuple[object, ...]]:
    """The header row, then each later row cut to the header's width: cells right of
    the last header cell belong to no column, so they are never read."""
    header = next(sheet.iter_rows(max_row=1, values_only=True), None)
    if header is None:
        return
    yield header
    width = max(
        (index + 1 for index, value in enumerate(header) if not _blank(value)),
        default=1,
    )
    yield from sheet.iter_rows(min_row=2, max_col=width, values_only=True)


def validate(
    rows: Iterator[tuple[object, ...]],
    uncached: set[tuple[int, int]],
    blank_rows_max: int = SheetBounds().blank_rows_max,
) -> list[ImportRow]:
    """Blank rows are skipped but counted: a sheet whose last row is far below its
    data cannot make the parser walk a million empty rows for free."""
    header = next(rows, None)
    if header is None or all(_blank(value) for value in header):
        raise invalid("customers", "The sheet is empty")
    columns = map_header(header)
    valid: list[ImportRow] = []
    bad = RowErrors()
    blank_rows = 0
    for row_number, row in enumerate(rows, start=2):
        if all(_blank(value) for value in row):
            blank_rows += 1
            if blank_rows > blank_rows_max:
                message = f"The sheet has more than {blank_rows_max} blank rows"
                raise invalid("customers", message)
            continue
        if len(valid) + bad.rows >= ROWS_MAX:
            raise invalid("customers", f"The sheet has more than {ROWS_MAX} rows")
        cells = _cells(row_number, row, columns, uncached)
        found = _row_errors(cells, columns)
        if found:
            bad.add(row_number, found)
        else:
            valid.append(_row(row_number, cells))
    bad.raise_any()
    if not valid:
        raise invalid("customers", "The sheet has no data rows")
    return valid


def map_header(header: tuple[object, ...]) -> dict[str, Column]:
    """field -> its column; the Name column is required."""
    columns: dict[str, Column] = {}
    for index, value in enumerate(header):
        label = str(value).strip() if value is not None else ""
        field = HEADERS.get(label.casefold())
        if field is not None and field not in columns:
            columns[field] = Column(index, label)
    if "business_name" not in columns:
        raise invalid("customers", "The sheet has no Name column")
    return columns


_UNCACHED = object()


def _cells(
    row_number: int,
    row: tuple[object, ...],
    columns: dict[str, Column],
    uncached: set[tuple[int, int]],
) -> dict[str, object]:
    cells: dict[str, object] = {}
    for field, column in columns.items():
        value = row[column.index] if column.index < len(row) else None
        if value is None and (row_number, column.index) in uncached:
            value = _UNCACHED
        cells[field] = value
    return cells


def _row_errors(cells: dict[str, object], columns: dict[str, Column]) -> dict[str, str]:
    found: dict[str, str] = {}
    for field, value in cells.items():
        message = _cell_error(field, value)
        if message is not None:
            found[columns[field].label] = message
    return found


def _cell_error(field: str, value: object) -> str | None:
    if value is _UNCACHED:
        return "is a formula without a cached value"
    try:
        _convert(field, value)
    except ValueError as error:
        return str(error)
    return None


def _row(row_number: int, cells: dict[str, object]) -> ImportRow:
    category = _text("category", cells.get("category"))
    return ImportRow(
        row_number=row_number,
        business_name=_text("business_name", cells["business_name"]),
        business_phone=_text("business_phone", cells.get("business_phone")),
        business_email=_text("business_email", cells.get("business_email")),
        business_address=_text("business_address", cells.get("business_address")),
        unpaid_minor=_amount(cells.get("unpaid")),
        deposit_minor=_amount(cells.get("deposit")),
        category_name=category or None,
        archived=_flag(cells.get("archived")),
    )


def _convert(field: str, value: object) -> object:
    """The cell as the field's value, or ValueError saying what is wrong."""
    if field in _TEXT_FIELDS or field == "category":
        return _text(field, value)
    if field == "archived":
        return _flag(value)
    amount = _amount(value)
    if field == "deposit" and amount < 0:
        raise ValueError("may not be negative")
    return amount


def _text(field: str, value: object) -> str:
    text = _cell_text(value).strip()
    if field == "business_name" and not text:
        raise ValueError("is required")
    if len(text) > TEXT_LENGTH_MAX:
        raise ValueError(f"may not be greater than {TEXT_LENGTH_MAX} characters")
    if field == "business_email" and text and not _EMAIL.fullmatch(text):
        raise ValueError("must be a valid email address")
    return text


def _cell_text(value: object) -> str:
    """A cell as text; numbers exactly as written (a phone number typed as a number)."""
    if value is None:
        return ""
    if isinstance(value, float):
        number = Decimal(str(value))
        return (
            format(number, "f") if number != number.to_integral() else str(int(number))
        )
    return str(value)


def _amount(value: object) -> int:
    if _blank(value):
        return 0
    if isinstance(value, bool):
        raise ValueError(AMOUNT_MESSAGE)
    number = Decimal(str(value)) if isinstance(value, float) else value
    try:
        return parse_signed_amount(number)
    except AmountError as error:
        limit = "may not be greater" in str(error)
        raise ValueError(str(error) if limit else AMOUNT_MESSAGE) from None


def _flag(value: object) -> bool:
    if _blank(value):
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().casefold()
    if text in ("yes", "true", "1"):
        return True
    if text in ("no", "false", "0"):
        return False
    raise ValueError("must be yes or no")


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
