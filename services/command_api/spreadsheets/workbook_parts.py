"""Hop 1 for spreadsheets: checks on an .xlsx archive's parts before openpyxl reads it.

An upload is a zip archive whose parts are XML. What openpyxl would load whole (the
shared-strings table) or what a byte search cannot read in every encoding (formulas
in a UTF-16 sheet) is read here with a streaming XML parser that honours the declared
encoding, keeping only what the checks need: a zip bomb and a table of millions of
strings are refused before they cost memory.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from xml.parsers.expat import ExpatError, ParserCreate

from openpyxl.utils.cell import coordinate_to_tuple

from shared.errors import UnsupportedMediaType, invalid

UNCOMPRESSED_MAX = 256 * 1024 * 1024  # a 100,000-row sheet inflates to ~30 MiB
RATIO_MAX = 200  # a member inflating more than this per byte, past 1 MiB, is a bomb
CONTENT_TYPES_SIZE_MAX = 1024 * 1024  # a real [Content_Types].xml is a few KiB
CHUNK_SIZE = 1024 * 1024
NOT_XLSX = "The file must be an Excel workbook (.xlsx)"
UNREADABLE = "The workbook could not be read"
TOO_COMPLEX = "The workbook is too large or too complex to read"
CONTENT_TYPES = "[Content_Types].xml"
SHARED_STRINGS_TYPE = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
)
# Tag names as expat reports them with namespace_separator="}".
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
PACKAGE = "http://schemas.openxmlformats.org/package/2006/content-types}"


def open_archive(raw: bytes) -> zipfile.ZipFile:
    """The upload as a zip holding a workbook, else 415 (it is not a spreadsheet)."""
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
    """Refuse an archive whose members would inflate past a sane bound (zipfile never
    inflates a member past its declared size, so the declared sizes are the bound)."""
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


def check_shared_strings(archive: zipfile.ZipFile, strings_max: int) -> None:
    """Refuse a shared-strings table of more than `strings_max` entries, counted while
    streaming it: openpyxl would load it whole (1M strings cost it 14 s and 160 MB)."""
    for name in _shared_string_parts(archive):
        count = 0

        def start(tag: str, attributes: dict[str, str]) -> None:
            nonlocal count
            if tag == MAIN + "si":
                count += 1
                if count > strings_max:
                    raise invalid("customers", TOO_COMPLEX)

        _parse_part(archive, name, start)


def _shared_string_parts(archive: zipfile.ZipFile) -> list[str]:
    """The parts [Content_Types].xml declares as shared strings (where openpyxl
    looks), and the usual name in case it is declared another way."""
    names = set(archive.namelist())
    if CONTENT_TYPES not in names:
        raise invalid("customers", UNREADABLE)
    if archive.getinfo(CONTENT_TYPES).file_size > CONTENT_TYPES_SIZE_MAX:
        raise invalid("customers", TOO_COMPLEX)
    parts = {"xl/sharedStrings.xml"}

    def start(tag: str, attributes: dict[str, str]) -> None:
        if tag == PACKAGE + "Override":
            if attributes.get("ContentType") == SHARED_STRINGS_TYPE:
                parts.add(attributes.get("PartName", "").lstrip("/"))

    _parse_part(archive, CONTENT_TYPES, start)
    return sorted(part for part in parts if part in names)


def formula_cells(archive: zipfile.ZipFile, sheet_path: str) -> set[tuple[int, int]]:
    """(row, 0-based column) of every cell of the sheet holding a formula, numbered
    as openpyxl numbers them (a row or cell without `r` follows the previous one)."""
    found: set[tuple[int, int]] = set()
    row_number = column = 0

    def start(tag: str, attributes: dict[str, str]) -> None:
        nonlocal row_number, column
        if tag == MAIN + "row":
            row_text = attributes.get("r")
            row_number = int(row_text) if row_text else row_number + 1
            column = 0
        elif tag == MAIN + "c":
            coordinate = attributes.get("r")
            if coordinate:
                row_number, column = coordinate_to_tuple(coordinate)
            else:
                column += 1
        elif tag == MAIN + "f":
            found.add((row_number, column - 1))

    _parse_part(archive, sheet_path, start)
    return found


def _parse_part(
    archive: zipfile.ZipFile, name: str, start: Callable[[str, dict[str, str]], None]
) -> None:
    """Call `start` for each element of one part, streamed in chunks through expat
    (which honours the part's declared encoding: a byte search for `<f` missed every
    formula of a UTF-16 sheet). Nothing is kept but what `start` keeps. A part that is
    not well-formed XML is a 422: the file claims to be a workbook but is broken."""
    parser = ParserCreate(namespace_separator="}")
    parser.StartElementHandler = start
    try:
        with archive.open(name) as member:
            while chunk := member.read(CHUNK_SIZE):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except ExpatError:
        raise invalid("customers", UNREADABLE) from None
