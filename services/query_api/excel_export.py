"""The export route's hop: a business's clients as an xlsx workbook, in bounded memory.

The rows come from the balances read model in keyset chunks (queries.export_chunk).
Each chunk is appended to an openpyxl write-only workbook in a worker thread while the
event loop reads the next one, so the loop keeps serving other requests and at most
two chunks are in memory. A write-only sheet keeps its rows in a temporary file of
openpyxl's and writes every string inline (no shared-strings table that would grow
with the row count); the saved workbook is a temporary file too, streamed to the
response in pieces and removed afterwards. Memory therefore does not grow with the
number of clients.

Cells:
- Text cells are always text. openpyxl would turn "=..." into a formula and "#N/A"
  into an error value; characters XML 1.0 cannot hold (control characters other than
  tab and line breaks) become U+FFFD instead of failing the whole export.
- Money cells are numbers written from integer minor units as their exact decimal
  text ("0.07", "-250.75") with the format `#,##0.00`. openpyxl would write a Decimal
  through float ("%.16g": 0.07 becomes 0.07000000000000001), so the cell gets the
  Decimal's own text and is typed numeric.
- Created At is the service's timestamp string, `2024-11-04T16:13:37.123456Z`, exactly
  the API's `created_at`. An Excel date cell would drop the time zone (Excel dates are
  naive) and round the microseconds (Excel stores a date as a float count of days);
  the ISO text still sorts in time order, and the import ignores the column.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import asyncpg
from aiohttp import web
from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils.exceptions import WorkbookAlreadySaved
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from services.query_api import queries
from shared.money import to_number
from shared.response_bodies import timestamp

HEADER = (
    "Name",
    "Phone Number",
    "Email-Address",
    "Address",
    "Upaid Amount",  # the seed's spelling, which the import also reads
    "Category",
    "Total Debit",
    "Total Credit",
    "Deposit Amount",
    "Archived",
    "Created At",
)
CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MONEY_FORMAT = "#,##0.00"
SHEET_TITLE = "Clients"
CHUNK_ROWS = 2_000
READ_BYTES = 256 * 1024
log = logging.getLogger(__name__)
T = TypeVar("T")


def text_cell(sheet: WriteOnlyWorksheet, text: str | None) -> Cell:
    """A text cell; an empty one for None (an erased client's personal field)."""
    if text is None:
        return WriteOnlyCell(sheet, value=None)
    cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("\ufffd", text))
    cell.data_type = "s"  # never a formula or an error value, whatever the text
    return cell


def money_cell(sheet: WriteOnlyWorksheet, minor: int) -> Cell:
    cell = WriteOnlyCell(sheet, value=str(to_number(minor)))
    cell.data_type = "n"  # the exact decimal text is written as a number's value
    cell.number_format = MONEY_FORMAT
    return cell


def client_cells(sheet: WriteOnlyWorksheet, row: asyncpg.Record) -> list[Cell]:
    """One client's row, in HEADER's order."""
    debit, credit = int(row["debit_minor"]), int(row["credit_minor"])
    return [
        text_cell(sheet, row["business_name"]),
        text_cell(sheet, row["business_phone"]),
        text_cell(sheet, row["business_email"]),
        text_cell(sheet, row["business_address"]),
        money_cell(sheet, debit - credit),
        text_cell(sheet, row["category"]),
        money_cell(sheet, debit),
        money_cell(sheet, credit),
        money_cell(sheet, int(row["deposit_minor"])),
        text_cell(sheet, "yes" if row["archived"] else "no"),
        text_cell(sheet, timestamp(row["created_at"])),
    ]


class ExportWorkbook:
    """A write-only workbook that worker threads fill one step at a time.

    append() and save() run in worker threads; discard() runs on the event loop when
    an export fails or is cancelled. Cancelling an await does not stop its thread, so
    every step takes the lock and does nothing once the workbook is finished: after
    discard() returns, no thread touches the workbook or its files again. (discard()
    may block the loop for the rest of one chunk's step, on failure paths only.)
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._finished = False
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet(SHEET_TITLE)
        self._sheet.append(HEADER)

    def append(self, rows: list[asyncpg.Record]) -> None:
        with self._lock:
            if not self._finished:
                for row in rows:
                    self._sheet.append(client_cells(self._sheet, row))

    def save(self) -> None:
        with self._lock:
            if not self._finished:
                self._book.save(self._path)
                self._finished = True

    def discard(self) -> None:
        """Give up an unsaved workbook. Only save() removes the temporary file in
        which openpyxl keeps a write-only sheet's rows, so it is removed here."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
            writer = self._sheet._writer
            if writer is None:
                return
            with contextlib.suppress(WorkbookAlreadySaved):
                self._sheet.close()
            with contextlib.suppress(FileNotFoundError, ValueError):
                writer.cleanup()


class WorkbookWriteFailed(Exception):  # noqa: N818 (named for what happened)
    """The workbook could not be written to local disk (full, read-only). Raised
    instead of the OSError: a read on a replica takes an OSError for its connection's
    (services/http/replica_reads.py), and a full disk here is no fault of the
    replica, nor a reason to run the export again on the primary."""


async def write_workbook(
    pool: asyncpg.Pool, business_id: int, category_id: int | None, path: Path
) -> None:
    """Write the business's live clients (of one category, or all) to `path`."""
    workbook = await _on_disk(ExportWorkbook, path)
    try:
        after = 0
        rows = await queries.export_chunk(
            pool, business_id, category_id, after, CHUNK_ROWS
        )
        while rows:
            after = rows[-1]["client_id"]
            # A worker thread writes this chunk while the loop reads the next one.
            _, rows = await asyncio.gather(
                _on_disk(workbook.append, rows),
                queries.export_chunk(pool, business_id, category_id, after, CHUNK_ROWS),
            )
        await _on_disk(workbook.save)
    finally:
        workbook.discard()  # nothing to do once saved


async def _on_disk(function: Callable[..., T], *args: object) -> T:
    """`function(*args)` in a worker thread; an OSError is a WorkbookWriteFailed."""
    try:
        return await asyncio.to_thread(function, *args)
    except OSError as error:
        raise WorkbookWriteFailed(
            f"the workbook could not be written: {error}"
        ) from error


def temporary_path() -> Path:
    """A new empty file for one export's workbook; the caller removes it."""
    handle, name = tempfile.mkstemp(prefix="ledger-export-", suffix=".xlsx")
    os.close(handle)
    return Path(name)


async def send_file(
    request: web.Request, path: Path, filename: str, timeout_s: float
) -> web.StreamResponse:
    """Stream the saved workbook as an attachment, a piece at a time. A client that
    takes no piece for `timeout_s` (a full receive window it never empties) is cut:
    left waiting, the send would hold the file and the connection for ever."""
    response = web.StreamResponse(
        headers={
            "Content-Type": CONTENT_TYPE,
            "Content-Disposition": f'attachment; filename="{filename}"',
            # The workbook holds every client's personal data: no cache (browser,
            # proxy) may keep a copy of it.
            "Cache-Control": "no-store",
        }
    )
    with await asyncio.to_thread(path.open, "rb") as file:
        response.content_length = os.fstat(file.fileno()).st_size
        await response.prepare(request)
        try:
            while piece := await asyncio.to_thread(file.read, READ_BYTES):
                async with asyncio.timeout(timeout_s):
                    await response.write(piece)
            async with asyncio.timeout(timeout_s):
                await response.write_eof()
        except ConnectionResetError:
            pass  # the client hung up: nobody is left to answer
        except TimeoutError:
            log.warning("export: the client took nothing for %g s; cut", timeout_s)
            if request.transport is not None:
                request.transport.abort()
    return response
