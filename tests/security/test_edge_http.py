"""Slow clients and odd headers, sent over raw sockets to a real `ledger run`.

The service runs with a 1 s body deadline (LEDGER_HTTP_BODY_TIMEOUT_S) and, for the
connection bound, a second one with LEDGER_HTTP_CONNECTIONS_MAX=3. Requests are
written byte for byte with asyncio streams, because an HTTP client library would
refuse to send what these attacks send.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.deadlines import POLL_S
from tests.e2e.supervisor import LedgerService, create_business, running

ANSWER_DEADLINE_S = 30.0
TRICKLE_PAUSE_S = 0.2


class Answer:
    """One raw HTTP answer: status, headers (lower-case names) and JSON body."""

    def __init__(self, raw: bytes) -> None:
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        self.body: Any = json.loads(body) if body else None


@pytest.fixture(scope="module")
async def edge(
    servers: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerService]:
    log_path = tmp_path_factory.mktemp("edge") / "ledger-run.log"
    overrides = {"LEDGER_HTTP_BODY_TIMEOUT_S": "1"}
    async with running(servers, log_path, "edge", overrides) as service:
        yield service


def _address(service: LedgerService) -> tuple[str, int]:
    host, port = service.base_url.removeprefix("http://").split(":")
    return host, int(port)


async def _read_answer(reader: asyncio.StreamReader) -> Answer:
    """One answer with a Content-Length body, read within the deadline."""
    async with asyncio.timeout(ANSWER_DEADLINE_S):
        head = await reader.readuntil(b"\r\n\r\n")
        length = Answer(head).headers.get("content-length", "0")
        body = await reader.readexactly(int(length))
    return Answer(head + body)


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _get(
    service: LedgerService, path: str, key: str | None = None
) -> tuple[Answer, Connection]:
    """GET `path` on a new keep-alive connection; the answer and the connection."""
    reader, writer = await asyncio.open_connection(*_address(service))
    authorization = f"Authorization: Bearer {key}\r\n" if key else ""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: ledger\r\n{authorization}\r\n".encode())
    await writer.drain()
    return await _read_answer(reader), (reader, writer)


async def _rest_until_closed(reader: asyncio.StreamReader) -> bytes:
    """What the service sends after its answer, read until it closes the connection.

    A close while the trickle still sends is seen as EOF or, when a trickled byte
    reaches the closed socket first, as a reset (TCP answers data sent to a closed
    socket with RST). Either is the service closing; anything sent before it counts.
    """
    received = b""
    async with asyncio.timeout(ANSWER_DEADLINE_S):
        try:
            while chunk := await reader.read(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return received


async def _trickle(writer: asyncio.StreamWriter, body: bytes) -> None:
    for byte in body:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(TRICKLE_PAUSE_S)


async def test_a_trickled_body_is_answered_408_and_writes_nothing(
    edge: LedgerService,
) -> None:
    """Proves the body deadline: a create whose 100-byte body comes one byte every
    0.2 s (20 s in all) is answered 408 in the Laravel shape after the 1 s deadline,
    the connection is closed, and the business still has no client."""
    business = await create_business(edge)
    key = business["api_key"]
    body = b'{"business_name": "' + b"x" * 78 + b'"}'
    reader, writer = await asyncio.open_connection(*_address(edge))
    writer.write(
        b"POST /api/v3/clients HTTP/1.1\r\nHost: ledger\r\n"
        + f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    trickle = asyncio.create_task(_trickle(writer, body))
    try:
        answer = await _read_answer(reader)
        rest = await _rest_until_closed(reader)
    finally:
        trickle.cancel()
        writer.close()
    assert answer.status == 408
    assert answer.body == {"message": "The request body did not arrive within 1 s"}
    assert answer.headers["content-type"] == "application/json"
    assert rest == b""  # closed by the service
    clients, (_, other) = await _get(edge, "/api/v3/clients", key)
    other.close()
    assert (clients.status, clients.body) == (200, [])


async def test_a_trickled_upload_is_answered_408(edge: LedgerService) -> None:
    """Proves the body deadline holds for multipart imports too: an upload whose
    first part arrives and whose file then trickles in one byte every 0.2 s is
    answered 408 in the Laravel shape, and the connection is closed."""
    business = await create_business(edge)
    boundary = "edge-boundary"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="customers"; filename="c.xlsx"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + b"P" * 200 + f"\r\n--{boundary}--\r\n".encode()
    reader, writer = await asyncio.open_connection(*_address(edge))
    writer.write(
        b"POST /api/v3/clients/import HTTP/1.1\r\nHost: ledger\r\n"
        + f"Authorization: Bearer {business['api_key']}\r\n".encode()
        + f"Content-Type: multipart/form-data; boundary={boundary}\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + head
    )
    trickle = asyncio.create_task(_trickle(writer, body[len(head) :]))
    try:
        answer = await _read_answer(reader)
        rest = await _rest_until_closed(reader)
    finally:
        trickle.cancel()
        writer.close()
    assert answer.status == 408
    assert answer.body == {"message": "The request body did not arrive within 1 s"}
    assert rest == b""


async def test_an_oversized_header_is_answered_as_json_without_a_traceback(
    edge: LedgerService,
) -> None:
    """Proves an oversized header line gets the Laravel shape: a 10,000-byte header
    value is answered 400 `{"message": ...}` naming the limit, the service logs one
    warning line for it and the whole log holds no traceback."""
    reader, writer = await asyncio.open_connection(*_address(edge))
    writer.write(
        b"GET /healthz HTTP/1.1\r\nHost: ledger\r\nX-Big: "
        + b"a" * 10_000
        + b"\r\n\r\n"
    )
    await writer.drain()
    try:
        answer = await _read_answer(reader)
    finally:
        writer.close()
    assert answer.status == 400
    assert answer.headers["content-type"] == "application/json"
    assert answer.body == {
        "message": "A request line or header is too long (8190 bytes at most)"
    }
    assert answer.headers["server"] == "ledger"
    await _wait_for_log(edge.log_path, "refused a request aiohttp could not read")
    assert "Traceback" not in await asyncio.to_thread(edge.log_path.read_text)


async def _wait_for_log(path: Path, text: str) -> None:
    deadline = time.monotonic() + ANSWER_DEADLINE_S
    while text not in await asyncio.to_thread(path.read_text):
        assert time.monotonic() < deadline, f"no {text!r} in the log"
        await asyncio.sleep(POLL_S)


async def test_answers_name_no_library_or_version_in_the_server_header(
    edge: LedgerService,
) -> None:
    """Proves the Server header is neutral: /healthz and a 404 say `ledger`, not
    `Python/3.x aiohttp/3.x`."""
    for path in ("/healthz", "/api/v3/clients/clients-print/no-such-bid"):
        answer, (_, writer) = await _get(edge, path)
        writer.close()
        assert answer.headers["server"] == "ledger", path


async def test_connections_beyond_the_bound_are_refused_with_503(
    servers: tuple[str, str], tmp_path: Path
) -> None:
    """Proves the connection bound: with LEDGER_HTTP_CONNECTIONS_MAX=3, three open
    keep-alive connections are served, a fourth is answered 503 with Retry-After and
    closed, and once one of the three closes a new connection is served again."""
    overrides = {"LEDGER_HTTP_CONNECTIONS_MAX": "3"}
    async with running(servers, tmp_path / "run.log", "conns", overrides) as service:
        held = [await _served_connection(service) for _ in range(3)]
        try:
            refused, (extra, extra_writer) = await _get(service, "/healthz")
            async with asyncio.timeout(ANSWER_DEADLINE_S):
                closed = await extra.read()
            extra_writer.close()
            assert refused.status == 503
            assert refused.headers["retry-after"] == "1"
            assert refused.body == {
                "message": "Too many connections to the service; retry shortly"
            }
            assert closed == b""
            held.pop().close()
            held.append(await _served_connection(service))
        finally:
            for writer in held:
                writer.close()


async def _served_connection(service: LedgerService) -> asyncio.StreamWriter:
    """A new connection that was served /healthz (retried while the service still
    counts connections that are closing), kept open."""
    deadline = time.monotonic() + ANSWER_DEADLINE_S
    while True:
        answer, (_, writer) = await _get(service, "/healthz")
        if answer.status == 200:
            return writer
        writer.close()
        assert time.monotonic() < deadline, "no connection was served"
        await asyncio.sleep(POLL_S)
