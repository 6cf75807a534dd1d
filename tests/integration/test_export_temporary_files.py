"""The export's temporary files (the workbook and openpyxl's row file) are removed once
the download is sent, fails midway or is abandoned by its client."""

from __future__ import annotations

import os
import tempfile
from logging import WARNING
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from services.query_api import excel_export, queries
from tests.integration.export_book import download
from tests.integration.scenarios import wait_until
from tests.support.spreadsheets import exported_rows


async def test_an_export_leaves_no_temporary_file_behind(
    service: TestClient,
    business: dict[str, Any],
    book: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Proves the workbook and openpyxl's row file are removed once the download is
    sent, by pointing the temporary directory at an empty one and waiting (on a
    deadline: the handler removes its file just after the last byte) for it to be
    empty again."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    response, raw = await download(service, business["bid"])
    assert response.status == 200 and len(exported_rows(raw)) == 4

    async def emptied() -> bool:
        return os.listdir(tmp_path) == []

    await wait_until(emptied, "the export's temporary files to be removed")


async def test_an_export_that_fails_midway_leaves_no_temporary_file_behind(
    service: TestClient,
    business: dict[str, Any],
    book: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Proves a failed export cleans up its files and answers 500 in JSON, by making
    the third chunk's read fail after two rows were written to the workbook."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(excel_export, "CHUNK_ROWS", 1)
    reads = 0
    real_chunk = queries.export_chunk

    async def failing_chunk(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        if reads == 3:
            raise RuntimeError("the read model went away")
        return await real_chunk(*args)

    monkeypatch.setattr(queries, "export_chunk", failing_chunk)
    response, _ = await download(service, business["bid"])
    assert response.status == 500
    assert await response.json() == {"message": "Server Error"}
    assert os.listdir(tmp_path) == []  # removed before the error was answered


async def test_a_download_abandoned_midway_leaves_no_temporary_file_behind(
    service: TestClient,
    business: dict[str, Any],
    book: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Proves a client hanging up mid-download leaves no file, no error log and a
    service still exporting, by streaming the file in 64-byte pieces, closing the
    connection after the first one and waiting for the temporary directory to empty."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(excel_export, "READ_BYTES", 64)
    response = await service.get(f"/api/v3/clients/clients-print/{business['bid']}")
    assert response.status == 200
    await response.content.readexactly(64)
    response.close()

    async def emptied() -> bool:
        return os.listdir(tmp_path) == []

    await wait_until(emptied, "the abandoned export's files to be removed")
    again, raw = await download(service, business["bid"])
    assert again.status == 200 and exported_rows(raw) == book["rows"]
    assert [r.getMessage() for r in caplog.records if r.levelno >= WARNING] == []
