"""Hop 1 for spreadsheets: read an uploaded .xlsx and validate every row.

Runs in a worker thread (asyncio.to_thread): openpyxl parses synchronously. The file
is checked as a zip archive before openpyxl opens it, so a zip bomb is refused from
its declared sizes (zipfile never inflates a member past its declared size). Cells go
Decimal(str(value)) -> exactness check -> minor units, here at the boundary.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from decimal import Decimal

import msgspec
from openpyxl import load_workbook

from shared.errors import UnsupportedMediaType, ValidationFailed, invalid
from shared.money import AmountError, parse_signed_amount

ROWS_MAX = 100_000
UNCOMPRESSED_MAX = 256 * 1024 * 1024  # a 100,000-row sheet inflates to ~30 MiB
RATIO_MAX = 200  # a member inflating more than this per byte, past 1 MiB, is a bomb
ERROR_ROWS_MAX = 100
TEXT_LENGTH_MAX = 255
AMOUNT_MESSAGE = "must be a number with at most two decimals"
NOT_XLSX = "The file must be an Excel workbook (.xlsx)"
# What openpyxl and zipfile raise on a malformed workbook (ParseError is a
# SyntaxError); our own ValidationFailed is none of these.
UNREADABLE = (
    KeyError,
    IndexError,
    TypeError,
    ValueError,
    SyntaxError,
    zipfile.BadZipFile,
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")
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


class ImportRow(msgspec.Struct, kw_only=True, frozen=True):
    """One valid spreadsheet row, ready to become commands."""

    row_number: int
    business_name: str
    business_phone: str = ""
    business_email: str = ""
    business_address: str = ""
    unpaid_minor: int = 0
    deposit_minor: int = 0
    category_name: str | None = None
    archived: bool = False


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


def parse(raw: bytes) -> list[ImportRow]:
    """Every data row of the workbook's first sheet, validated; all or nothing."""
    archive = open_archive(raw)
    with archive:
        check_sizes(archive)
        formulas = has_formulas(archive)
    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
        try:
            if not book.worksheets:
                raise invalid("customers", "The workbook has no sheet")
            uncached = formula_cells(raw) if formulas else set()
            return validate(book.worksheets[0].iter_rows(values_only=True), uncached)
        finally:
            book.close()
    except UNREADABLE:
        # A zip that claims to be a workbook but whose parts openpyxl cannot read
        # (broken XML, missing parts, a member whose CRC or size does not match).
        raise invalid("customers", "The workbook could not be read") from None


def open_archive(raw: bytes) -> zipfile.ZipFile:
    if not raw.startswith(b"PK\x03\x04"):
        raise UnsupportedMediaType(NOT_XLSX)
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise UnsupportedMediaType(NOT_XLSX) from None
    if "xl/workbook.xml" not in archive.namelist():
        archive.close()
        raise UnsupportedMediaType(NOT_XLSX)
    return archive


def check_sizes(archive: zipfile.ZipFile) -> None:
    """Refuse an archive whose members would inflate past a sane bound."""
    members = archive.infolist()
    total = sum(member.file_size for member in members)
    bombs = [
        member
        for member in members
        if member.file_size > 1024 * 1024
        and member.file_size > RATIO_MAX * max(member.compress_size, 1)
    ]
    if total > UNCOMPRESSED_MAX or bombs:
        raise invalid("customers", "The workbook inflates past a sane size")


def has_formulas(archive: zipfile.ZipFile) -> bool:
    """Whether any worksheet holds a formula, read in chunks (sizes are checked)."""
    for name in archive.namelist():
        if name.startswith("xl/worksheets/") and name.endswith(".xml"):
            with archive.open(name) as member:
                tail = b""
                while chunk := member.read(1024 * 1024):
                    if _FORMULA.search(tail + chunk):
                        return True
                    tail = chunk[-16:]
    return False


def formula_cells(raw: bytes) -> set[tuple[int, int]]:
    """(row, column) of every formula cell of the first sheet, 1-based rows."""
    book = load_workbook(io.BytesIO(raw), read_only=True, data_only=False)
    try:
        found: set[tuple[int, int]] = set()
        rows = book.worksheets[0].iter_rows(values_only=True)
        for row_number, row in enumerate(rows, start=1):
            for index, value in enumerate(row):
                if isinstance(value, str) and value.startswith("="):
                    found.add((row_number, index))
        return found
    finally:
        book.close()


def validate(
    rows: Iterator[tuple[object, ...]], uncached: set[tuple[int, int]]
) -> list[ImportRow]:
    header = next(rows, None)
    if header is None or all(_blank(value) for value in header):
        raise invalid("customers", "The sheet is empty")
    columns = map_header(header)
    valid: list[ImportRow] = []
    bad = RowErrors()
    for row_number, row in enumerate(rows, start=2):
        if all(_blank(value) for value in row):
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
