"""GET /api/v3/events as the feed tests read it: a business's key, one page, every
page to the head, the business's stored events as the relay would publish them, a
write that must succeed, and the two writers' connections the ordering tests race."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared.bus import broker
from shared.store.event_rows import SELECT_EVENTS, envelope_from_row
from tests.support.environment import Environment

Headers = dict[str, str]


@pytest.fixture
async def connections(isolated: Environment) -> AsyncIterator[list[asyncpg.Connection]]:
    """Two writers as the service role."""
    conns = [await asyncpg.connect(isolated.settings.database_url) for _ in range(2)]
    yield conns
    for conn in conns:
        await conn.close()


def key_headers(business: dict[str, object]) -> Headers:
    return {"Authorization": f"Bearer {business['api_key']}"}


async def feed_page(
    client: TestClient, headers: Headers, after: int, limit: int = 100
) -> tuple[list[dict[str, object]], int]:
    answer = await client.get(
        "/api/v3/events", params={"after": after, "limit": limit}, headers=headers
    )
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    assert list(body) == ["data", "next_after"]
    return body["data"], body["next_after"]


async def read_to_head(
    client: TestClient, headers: Headers, after: int = 0, limit: int = 100
) -> tuple[list[dict[str, object]], int]:
    """Every page from `after` until an empty one; the events and the last cursor."""
    events: list[dict[str, object]] = []
    while True:
        page, next_after = await feed_page(client, headers, after, limit)
        if not page:
            assert next_after == after
            return events, after
        assert len(page) <= limit
        assert next_after == page[-1]["position"]
        events.extend(page)
        after = next_after


async def business_messages(
    pool: asyncpg.Pool, business_id: int
) -> list[dict[str, object]]:
    """The business's stored events in (transaction, position) order, each as the
    relay would publish it."""
    rows = await pool.fetch(
        SELECT_EVENTS + "WHERE business_id = $1 ORDER BY transaction_id, position",
        business_id,
    )
    return [json.loads(broker.envelope_body(envelope_from_row(row))) for row in rows]


async def post_ok(client: TestClient, headers: Headers, path: str, body: object) -> int:
    """POST and expect 201/200 (read-your-writes: the events are already published)."""
    answer = await client.post(path, json=body, headers=headers)
    assert answer.status in (200, 201), (answer.status, await answer.text())
    if path == "/api/v3/clients":
        client_id: int = (await answer.json())["id"]
        return client_id
    return 0
