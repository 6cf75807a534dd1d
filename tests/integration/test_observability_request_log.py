"""The request log through the real HTTP app: one JSON line per request, and the
X-Request-Id that ties a request to its events, echoed or replaced."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient


async def test_a_request_is_one_json_log_line_with_its_ids(
    fresh_app: TestClient,
    business: dict[str, Any],
    request_log: io.StringIO,
    pool: asyncpg.Pool,
) -> None:
    """Proves the request log and X-Request-Id passthrough, by creating a client with
    X-Request-Id: the response echoes it, the one log line (JSON) holds method,
    route, status, duration, request id, business id and correlation id, and the
    client's event carries the request id as its correlation id."""
    request_id = f"req-{uuid.uuid4()}"
    response = await fresh_app.post(
        "/api/v3/clients",
        json={"business_name": "Logged"},
        headers={**business["headers"], "X-Request-Id": request_id},
    )
    assert response.status == 201
    assert response.headers["X-Request-Id"] == request_id
    client_id = (await response.json())["id"]

    lines = [json.loads(line) for line in request_log.getvalue().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    duration_ms = line.pop("duration_ms")
    assert isinstance(duration_ms, float) and duration_ms > 0
    assert isinstance(line.pop("time"), str)
    assert line == {
        "level": "INFO",
        "logger": "ledger.request",
        "message": "POST /api/v3/clients 201",
        "event": "http.request",
        "method": "POST",
        "route": "/api/v3/clients",
        "status": 201,
        "request_id": request_id,
        "business_id": business["business_id"],
        "correlation_id": request_id,
    }
    correlation = await pool.fetchval(
        "SELECT metadata->>'correlation_id' FROM events WHERE stream_id = $1",
        f"client-{client_id}",
    )
    assert correlation == request_id


async def test_a_request_id_that_cannot_be_echoed_is_replaced(
    fresh_app: TestClient, business: dict[str, Any], request_log: io.StringIO
) -> None:
    """Proves an X-Request-Id over 255 characters, or none, gets a fresh UUID that is
    echoed and logged, and that X-Correlation-Id still names the correlation id."""
    too_long = "r" * 256
    replaced = await fresh_app.get("/healthz", headers={"X-Request-Id": too_long})
    fresh = await fresh_app.get("/healthz")
    correlated = await fresh_app.post(
        "/api/v3/clients",
        json={"business_name": "Correlated"},
        headers={
            **business["headers"],
            "X-Request-Id": "req-a",
            "X-Correlation-Id": "corr-b",
        },
    )

    ids = [response.headers["X-Request-Id"] for response in (replaced, fresh)]
    for request_id in ids:
        assert str(uuid.UUID(request_id)) == request_id
    assert ids[0] != ids[1]
    lines = [json.loads(line) for line in request_log.getvalue().splitlines()]
    assert [(line["route"], line["request_id"]) for line in lines] == [
        ("/healthz", ids[0]),
        ("/healthz", ids[1]),
        ("/api/v3/clients", "req-a"),
    ]
    assert lines[0]["business_id"] is None
    assert lines[2]["correlation_id"] == "corr-b"
    assert correlated.headers["X-Request-Id"] == "req-a"
