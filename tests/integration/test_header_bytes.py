"""Header values holding bytes that are not printable ASCII are refused or replaced at
the edge, never a 500: requests are written byte for byte over a raw TCP socket to the
in-process service, since HTTP client libraries refuse to send such values."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

import asyncpg
import msgspec
from aiohttp.test_utils import TestClient

from tests.integration.scenarios import id_of

NOT_PRINTABLE = b"\xff"
UNAUTHENTICATED = {"message": "Unauthenticated."}


class RawReply(msgspec.Struct, frozen=True):
    status: int
    headers: dict[str, str]
    body: object


async def send_raw(
    service: TestClient,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
) -> RawReply:
    """Write one HTTP/1.1 request as raw bytes and read the answer until the server
    closes the connection (the request asks it to)."""
    lines = [f"{method} {path} HTTP/1.1".encode(), f"Host: {service.host}".encode()]
    lines += [name + b": " + value for name, value in headers]
    lines += [
        b"Content-Type: application/json",
        f"Content-Length: {len(body)}".encode(),
        b"Connection: close",
    ]
    reader, writer = await asyncio.open_connection(service.host, service.port)
    try:
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = dict(line.split(": ", 1) for line in header_lines)
    headers_by_name = {name.lower(): value for name, value in parsed.items()}
    assert int(headers_by_name["content-length"]) == len(payload)
    assert headers_by_name["content-type"].startswith("application/json")
    return RawReply(
        status=int(status_line.split(" ")[1]),
        headers=headers_by_name,
        body=json.loads(payload, parse_float=Decimal),
    )


def bearer(business: dict[str, object]) -> tuple[bytes, bytes]:
    return b"Authorization", f"Bearer {business['api_key']}".encode()


async def _event_count(pool: asyncpg.Pool, business_id: int) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM events WHERE business_id = $1", business_id
    )
    return count


async def _key_count(pool: asyncpg.Pool, business_id: int) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE business_id = $1", business_id
    )
    return count


async def test_an_api_key_with_a_byte_that_is_not_ascii_is_a_401(
    service: TestClient, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """Proves an Authorization value holding a 0xff byte is refused as
    unauthenticated, by sending it before, inside and after a valid key on a write
    and a read: 401 {"message": "Unauthenticated."} each time, and no event stored."""
    key = str(business["api_key"]).encode()
    values = [
        b"Bearer " + key + NOT_PRINTABLE,
        b"Bearer " + NOT_PRINTABLE + key,
        b"Bearer " + key[:8] + NOT_PRINTABLE + key[8:],
        b"Bearer " + NOT_PRINTABLE,
        b"Bearer" + NOT_PRINTABLE + b" " + key,
    ]
    body = b'{"business_name": "Refused"}'
    for value in values:
        for method, payload in (("POST", body), ("GET", b"")):
            reply = await send_raw(
                service, method, "/api/v3/clients", [(b"Authorization", value)], payload
            )
            assert (reply.status, reply.body) == (401, UNAUTHENTICATED), value
    assert await _event_count(pool, id_of(business)) == 1  # its category, no more


async def test_an_idempotency_key_with_a_byte_that_is_not_ascii_is_a_422(
    service: TestClient, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """Proves an Idempotency-Key holding a 0xff byte is refused in the Laravel 422
    shape, by sending it on a client creation (alone, inside a key, and after one):
    nothing is stored, neither an event nor an idempotency key."""
    for value in (NOT_PRINTABLE, b"key-" + NOT_PRINTABLE + b"-1", b"key-1\xff"):
        reply = await send_raw(
            service,
            "POST",
            "/api/v3/clients",
            [bearer(business), (b"Idempotency-Key", value)],
            b'{"business_name": "Refused"}',
        )
        assert (reply.status, reply.body) == (
            422,
            {
                "message": "The given data was invalid.",
                "errors": {
                    "Idempotency-Key": [
                        "The Idempotency-Key must be 1 to 255 printable ASCII"
                        " characters."
                    ]
                },
            },
        ), value
    assert await _event_count(pool, id_of(business)) == 1
    assert await _key_count(pool, id_of(business)) == 0


async def test_a_correlation_id_with_a_byte_that_is_not_ascii_is_replaced(
    service: TestClient, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """Proves a correlation id the store cannot hold is replaced by a fresh UUID, by
    creating a client with a 0xff byte in X-Correlation-Id and another with one in
    X-Request-Id: both answer 201 and their events carry distinct UUID correlation
    ids."""
    created: list[int] = []
    for header in (b"X-Correlation-Id", b"X-Request-Id"):
        reply = await send_raw(
            service,
            "POST",
            "/api/v3/clients",
            [bearer(business), (header, b"corr-" + NOT_PRINTABLE)],
            b'{"business_name": "Correlated"}',
        )
        assert reply.status == 201, reply.body
        assert isinstance(reply.body, dict)
        assert reply.body["business_name"] == "Correlated"
        created.append(reply.body["id"])
    rows = await pool.fetch(
        "SELECT metadata->>'correlation_id' AS correlation_id FROM events"
        " WHERE stream_id = ANY($1::text[]) ORDER BY position",
        [f"client-{client_id}" for client_id in created],
    )
    correlation_ids = [row["correlation_id"] for row in rows]
    assert len(correlation_ids) == 2
    assert len(set(correlation_ids)) == 2
    for correlation_id in correlation_ids:
        assert str(uuid.UUID(correlation_id)) == correlation_id
    assert await _event_count(pool, id_of(business)) == 3
