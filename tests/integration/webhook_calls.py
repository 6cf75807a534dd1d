"""Calls the webhook tests make: a business, endpoints, clients and postings over the
in-process API, and the events they wrote, read as the admin."""

from __future__ import annotations

import uuid

import asyncpg
from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from shared.config import Settings
from tests.integration.scenarios import wait_until
from tests.integration.webhook_receiver import Receiver

Headers = dict[str, str]


async def new_business(settings: Settings, admin: asyncpg.Pool) -> tuple[int, Headers]:
    """A business whose own first events the relay has published already (so only
    events after the endpoint's creation reach it)."""
    created = await provision_business(settings, f"Hooks {uuid.uuid4().hex[:8]}")
    business_id = int(str(created["business_id"]))

    async def relayed() -> bool:
        last = await admin.fetchval(
            "SELECT max(position) FROM events WHERE business_id = $1", business_id
        )
        cursor = await admin.fetchval("SELECT min(position) FROM relay_cursor")
        return last is None or (cursor is not None and cursor >= last)

    await wait_until(relayed, "the business's first events relayed")
    return business_id, {"Authorization": f"Bearer {created['api_key']}"}


async def call(
    api: TestClient, method: str, path: str, headers: Headers, body: object = None
) -> tuple[int, dict[str, object]]:
    response = await api.request(method, path, json=body, headers=headers)
    return response.status, await response.json()


async def endpoint(
    api: TestClient, headers: Headers, url: str, events: list[str]
) -> dict[str, object]:
    status, body = await call(
        api, "POST", "/api/v3/webhooks", headers, {"url": url, "events": events}
    )
    assert status == 201, body
    return body


async def new_client(api: TestClient, headers: Headers, name: str) -> int:
    status, body = await call(
        api,
        "POST",
        "/api/v3/clients",
        headers,
        {"business_name": name, "first_name": "Ama", "phone_number": "0244123456"},
    )
    assert status == 201, body
    return int(str(body["id"]))


async def debit(api: TestClient, headers: Headers, client_id: int, amount: int) -> None:
    path = f"/api/v3/clients/{client_id}/transactions"
    status, body = await call(
        api, "POST", path, headers, {"type": "debit", "amount": amount}
    )
    assert status == 201, body


async def event_ids(admin: asyncpg.Pool, business_id: int, after: int) -> list[str]:
    rows = await admin.fetch(
        "SELECT event_id FROM events WHERE business_id = $1 AND position > $2"
        " ORDER BY position",
        business_id,
        after,
    )
    return [str(row["event_id"]) for row in rows]


async def head_position(admin: asyncpg.Pool) -> int:
    return int(await admin.fetchval("SELECT coalesce(max(position), 0) FROM events"))


async def count_at_least(receiver: Receiver, count: int) -> bool:
    return len(receiver.requests) >= count
