"""Hop 1 for spreadsheets: the API's side of parsing an upload in a worker process.

The pool lives as long as the app (cleanup_ctx); each import hands it the file with
the sheet bounds from the settings, and decodes the worker's answer off the event
loop (100,000 rows take a while to decode too).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from services.command_api.spreadsheets import sheet_worker
from services.command_api.spreadsheets.excel_import import SheetBounds
from services.command_api.spreadsheets.parse_pool import ParsePool
from services.command_api.spreadsheets.worker_limits import WorkerLimits
from services.http.edge import SETTINGS
from shared.commands import ImportRow

PARSE_POOL = web.AppKey("parse_pool", ParsePool)


async def parse_pool_context(app: web.Application) -> AsyncIterator[None]:
    """The spreadsheet workers' lifetime: none outlives the app."""
    settings = app[SETTINGS]
    limits = WorkerLimits(
        cpu_s=settings.import_cpu_s, memory_mib=settings.import_memory_mib
    )
    pool = ParsePool(settings.import_workers, limits, settings.import_timeout_s)
    app[PARSE_POOL] = pool
    yield
    await pool.close()


async def parse_upload(request: web.Request, raw: bytes) -> list[ImportRow]:
    """The validated rows, parsed in a bounded worker process."""
    settings = request.app[SETTINGS]
    bounds = SheetBounds(
        blank_rows_max=settings.import_blank_rows_max,
        shared_strings_max=settings.import_shared_strings_max,
    )
    target = partial(sheet_worker.parse_to_message, bounds)
    message = await request.app[PARSE_POOL].run(target, raw)
    return await asyncio.to_thread(sheet_worker.rows_from_message, message)
