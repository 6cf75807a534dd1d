"""The aged receivables report as an xlsx workbook (`GET /api/v3/clients/aging.xlsx`).

One sheet: a row per client in the JSON report's order, then a Total row. Money cells
are numbers written from integer minor units as their exact decimal text, with the
export's format (services/query_api/excel_export.py says why not through float);
names are text cells, never formulas, and an erased client's name is an empty cell.
The workbook is write-only and saved to a temporary file in a worker thread, so the
event loop keeps serving while it is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from services.query_api.aging_report import Report
from services.query_api.excel_export import money_cell, text_cell
from shared import aging

HEADER = (
    "Client ID",
    "Name",
    "Current",
    "1-30 Days",
    "31-60 Days",
    "61-90 Days",
    "Over 90 Days",
    "Total",
    "Unapplied Credit",
)
SHEET_TITLE = "Aged Receivables"


def _figures(sheet: WriteOnlyWorksheet, figures: Sequence[int]) -> list[Cell]:
    return [money_cell(sheet, minor) for minor in figures]


def _save(path: Path, report: Report) -> None:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(SHEET_TITLE)
    sheet.append([f"As of {report.as_of.isoformat()}, terms {report.terms_days} days"])
    sheet.append(HEADER)
    for row in report.rows:  # id, name, then the seven figures
        sheet.append(
            [WriteOnlyCell(sheet, value=row[0]), text_cell(sheet, row[1])]
            + _figures(sheet, row[2:9])
        )
    totals = [getattr(report.totals, name) for name in aging.Buckets.__struct_fields__]
    sheet.append([None, text_cell(sheet, "Total")] + _figures(sheet, totals))
    book.save(path)


async def write(path: Path, report: Report) -> None:
    """Write the report to `path`, in a worker thread."""
    await asyncio.to_thread(_save, path, report)
