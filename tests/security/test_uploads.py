"""Uploads are bounded however they are sent (issue 9, part 3): the 20 MiB bound
counts every part's bytes as read, chunked bodies included, and a form has a few
parts at most. Bodies are sent chunked (no Content-Length to refuse them by)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from tests.support.workbooks import HEADER, workbook

IMPORT = "/api/v3/clients/import"
BOUNDARY = "sheets-boundary"


def part(headers: str, content: bytes) -> bytes:
    return f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n"


def file_part(raw: bytes) -> bytes:
    return part(
        'Content-Disposition: form-data; name="customers"; filename="c.xlsx"',
        raw,
    )


class ChunkedBody:
    """A multipart body sent chunk by chunk, counting the bytes handed to aiohttp."""

    def __init__(self, parts: AsyncIterator[bytes]) -> None:
        self.parts = parts
        self.sent = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self.parts:
            self.sent += len(chunk)
            yield chunk
        yield f"--{BOUNDARY}--\r\n".encode()


async def post(
    service: TestClient, business: dict[str, Any], body: ChunkedBody
) -> tuple[int, Any]:
    headers = {
        **business["headers"],
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
    }
    response = await service.post(IMPORT, data=body.chunks(), headers=headers)
    return response.status, await response.json()


async def test_fifty_thousand_chunked_fields_are_refused_at_the_ninth_part(
    service: TestClient, business: dict[str, Any], pool: asyncpg.Pool
) -> None:
    """50,000 chunked 1 KB fields before a valid file (all kept in memory, +54 MB,
    then a 201 before) answer 413 at the ninth part, long before the 50 MB are sent;
    nothing is written."""
    before = await pool.fetchval("SELECT count(*) FROM events")
    raw = workbook("openpyxl", [HEADER, [f"Ama {uuid.uuid4().hex}"]])

    async def parts() -> AsyncIterator[bytes]:
        for n in range(50_000):
            yield part(f'Content-Disposition: form-data; name="f{n}"', b"x" * 1024)
        yield file_part(raw)

    body = ChunkedBody(parts())
    status, answer = await post(service, business, body)
    assert (status, answer) == (
        413,
        {"message": "The form has too many parts (8 at most)"},
    )
    assert body.sent < 50_000 * 1024
    assert await pool.fetchval("SELECT count(*) FROM events") == before


async def test_twenty_two_mebibytes_ahead_of_a_valid_file_are_too_large(
    service: TestClient, business: dict[str, Any], pool: asyncpg.Pool
) -> None:
    """A chunked body of 22 MiB in a part without a name, then a valid file (which
    was imported: 201), answers 413: every part's bytes count toward 20 MiB."""
    before = await pool.fetchval("SELECT count(*) FROM events")
    raw = workbook("openpyxl", [HEADER, [f"Ama {uuid.uuid4().hex}"]])

    async def parts() -> AsyncIterator[bytes]:
        yield f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\n".encode()
        for _ in range(22):
            yield b"x" * (1024 * 1024)
        yield b"\r\n"
        yield file_part(raw)

    status, answer = await post(service, business, ChunkedBody(parts()))
    assert (status, answer) == (
        413,
        {"message": "The file is too large (20 MiB at most)"},
    )
    assert await pool.fetchval("SELECT count(*) FROM events") == before
