"""The HTTP calls the reversal tests build on, against the in-process service: a
business's headers, a new client, a new posting, a POST's answer, a GET's body with
exact numbers, and the stored reversal event."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient
from msgspec import to_builtins

from shared import events as e
from shared.store.event_rows import SELECT_EVENTS, envelope_from_row
from tests.integration.scenarios import decoded

Headers = dict[str, str]
Service = TestClient[web.Request, web.Application]
Answer = tuple[int, dict[str, object]]
# How many rounds the racing tests run: each round is one race.
ROUNDS = 6


def business_headers(business: dict[str, object]) -> Headers:
    headers = business["headers"]
    assert isinstance(headers, dict)
    return headers


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


async def post_json(
    service: Service, path: str, body: object, headers: Headers
) -> Answer:
    response = await service.post(path, json=body, headers=headers)
    return response.status, decoded(await response.read())


async def new_client(service: Service, headers: Headers) -> int:
    status, body = await post_json(
        service, "/api/v3/clients", {"business_name": "Reversal Ltd"}, headers
    )
    assert status == 201, body
    client_id = body["id"]
    assert isinstance(client_id, int)
    return client_id


async def new_posting(
    service: Service, client_id: int, kind: str, body: object, headers: Headers
) -> int:
    status, posted = await post_json(
        service, f"/api/v3/clients/{client_id}/{kind}", body, headers
    )
    assert status == 201, posted
    entry_id = posted["id"]
    assert isinstance(entry_id, int)
    return entry_id


async def get_json(service: Service, path: str, headers: Headers) -> object:
    """A GET's JSON body (object or array), numbers as exact Decimals."""
    response = await service.get(path, headers=headers)
    assert response.status == 200, await response.text()
    return json.loads(await response.read(), parse_float=Decimal)


async def reversal_event(
    pool: asyncpg.Pool, client_id: int, kind: str
) -> dict[str, Any] | None:
    """The stream's event of that type as readers get it (its sealed reason open):
    its `recorded_at`, and its `payload` as JSON objects."""
    row = await pool.fetchrow(
        SELECT_EVENTS + "WHERE stream_id = $1 AND type = $2",
        e.client_stream(client_id),
        kind,
    )
    if row is None:
        return None
    event = envelope_from_row(row)
    return {"recorded_at": event.recorded_at, "payload": to_builtins(event.payload)}


async def client_body(
    service: Service, client_id: int, headers: Headers
) -> dict[str, object]:
    """GET /clients/{id}'s body, numbers as exact Decimals."""
    return decoded(
        await (
            await service.get(f"/api/v3/clients/{client_id}", headers=headers)
        ).read()
    )
