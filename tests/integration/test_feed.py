"""GET /api/v3/events: the business's events in the relay's order, never skipping one,
and a late subscriber that reads it and then its queue sees each event exactly once."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from services.command_api.appender import Appender
from shared.bus import asyncapi, broker
from shared.store.event_store import SELECT_EVENTS, append, envelope_from_row
from tests.integration.scenarios import (
    create_client,
    id_of,
    next_posting,
    wait_until,
    wait_until_readable,
)
from tests.support.environment import Environment
from tests.support.service import http_client

Headers = dict[str, str]


def _headers(business: dict[str, object]) -> Headers:
    return {"Authorization": f"Bearer {business['api_key']}"}


async def _feed(
    client: TestClient, headers: Headers, after: int, limit: int = 100
) -> tuple[list[dict[str, object]], int]:
    answer = await client.get(
        "/api/v3/events", params={"after": after, "limit": limit}, headers=headers
    )
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    assert list(body) == ["data", "next_after"]
    return body["data"], body["next_after"]


async def _read_to_head(
    client: TestClient, headers: Headers, after: int = 0, limit: int = 100
) -> tuple[list[dict[str, object]], int]:
    """Every page from `after` until an empty one; the events and the last cursor."""
    events: list[dict[str, object]] = []
    while True:
        page, next_after = await _feed(client, headers, after, limit)
        if not page:
            assert next_after == after
            return events, after
        assert len(page) <= limit
        assert next_after == page[-1]["position"]
        events.extend(page)
        after = next_after


async def _business_messages(
    pool: asyncpg.Pool, business_id: int
) -> list[dict[str, object]]:
    """The business's stored events in (transaction, position) order, each as the
    relay would publish it."""
    rows = await pool.fetch(
        SELECT_EVENTS + "WHERE business_id = $1 ORDER BY transaction_id, position",
        business_id,
    )
    return [json.loads(broker.envelope_body(envelope_from_row(row))) for row in rows]


async def _post(client: TestClient, headers: Headers, path: str, body: object) -> int:
    """POST and expect 201/200 (read-your-writes: the events are already published)."""
    answer = await client.post(path, json=body, headers=headers)
    assert answer.status in (200, 201), (answer.status, await answer.text())
    if path == "/api/v3/clients":
        client_id: int = (await answer.json())["id"]
        return client_id
    return 0


async def test_the_feed_pages_through_exactly_the_business_events(
    service: TestClient,
    business: dict[str, object],
    environment: Environment,
    pool: asyncpg.Pool,
) -> None:
    """Proves the feed serves one business's events, and only them, as the relay's
    message bodies, in pages of `limit` that join without a gap or a repeat: a second
    business writes meanwhile, and pages of 2 read to the head equal the business's
    stored events in (transaction, position) order."""
    headers = _headers(business)
    other = await provision_business(environment.settings, "Other feed")
    for owner in (business, other):
        client_id = await _post(
            service, _headers(owner), "/api/v3/clients", {"business_name": "Fed"}
        )
        await _post(
            service,
            _headers(owner),
            f"/api/v3/clients/{client_id}/transactions",
            {"type": "debit", "amount": "3.00"},
        )
    await wait_until_readable(pool)

    events, last = await _read_to_head(service, headers, limit=2)
    stored = await _business_messages(pool, id_of(business))
    assert [event["type"] for event in stored] == [
        "category.created",
        "client.created",
        "transaction.posted",
    ]
    assert events == stored
    assert last == stored[-1]["position"]
    assert await _read_to_head(service, headers, limit=1) == (events, last)
    other_events, _ = await _read_to_head(service, _headers(other), limit=1000)
    assert other_events == await _business_messages(pool, id_of(other))
    assert {event["event_id"] for event in events}.isdisjoint(
        event["event_id"] for event in other_events
    )


async def test_the_feed_refuses_bad_cursors_and_needs_a_key(
    service: TestClient,
    business: dict[str, object],
    environment: Environment,
    pool: asyncpg.Pool,
) -> None:
    """Another business's position, a position no event has, a non-numeric or
    negative `after` and a zero `limit` answer 422 in the Laravel shape; no key is a
    401; the AsyncAPI document needs no key and is the generated one."""
    headers = _headers(business)
    other = await provision_business(environment.settings, "Other cursor")
    foreign: int = await pool.fetchval(
        "SELECT position FROM events WHERE business_id = $1", id_of(other)
    )
    beyond = 1 + await pool.fetchval("SELECT max(position) FROM events")
    cursor_error = {
        "after": ["The after must be 0 or the position of one of your events."]
    }
    for query, errors in (
        ({"after": str(foreign)}, cursor_error),
        ({"after": str(beyond)}, cursor_error),
        ({"after": "abc"}, {"after": ["The after must be a whole number."]}),
        ({"after": "-1"}, {"after": ["The after must be a whole number."]}),
        ({"limit": "0"}, {"limit": ["The limit must be at least 1."]}),
    ):
        answer = await service.get("/api/v3/events", params=query, headers=headers)
        assert answer.status == 422, query
        assert await answer.json() == {
            "message": "The given data was invalid.",
            "errors": errors,
        }
    assert (await service.get("/api/v3/events")).status == 401
    document = await service.get("/api/v3/asyncapi.json")
    assert document.status == 200
    assert document.content_type == "application/json"
    assert await document.read() == asyncapi.rendered()


@pytest.fixture
async def connections(isolated: Environment) -> AsyncIterator[list[asyncpg.Connection]]:
    """Two writers as the service role."""
    conns = [await asyncpg.connect(isolated.settings.database_url) for _ in range(2)]
    yield conns
    for conn in conns:
        await conn.close()


async def test_the_feed_never_skips_an_event_that_commits_late(
    isolated: Environment,
    isolated_pool: asyncpg.Pool,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
    connections: list[asyncpg.Connection],
) -> None:
    """Proves a position cursor is safe, with commits landing out of position order.
    Writer B takes its transaction id first; A then appends (lower position) and stays
    open while B appends (higher position) and commits. The feed serves B, whose
    transaction is below every running one, and its `next_after` is B's position,
    above A's: a `position > after` follower would never see A. Once A commits, the
    feed from B's position serves A, exactly once. Then A' (lower position, open)
    and B' (higher, committed, later transaction) show the other order: the feed
    serves nothing until A' commits, then A', B'."""
    conn_a, conn_b = connections
    headers = _headers(isolated_business)
    business_id = id_of(isolated_business)
    key = isolated.settings.hmac_key.encode()
    first, second = [
        await create_client(isolated_appender, business_id) for _ in range(2)
    ]
    async with http_client(isolated.settings) as client:
        await wait_until_readable(isolated_pool)
        _, after = await _read_to_head(client, headers)

        event_a = await next_posting(isolated_pool, key, business_id, first, 100)
        event_b = await next_posting(isolated_pool, key, business_id, second, 200)
        transaction_b = conn_b.transaction()
        await transaction_b.start()
        await conn_b.fetchval("SELECT pg_current_xact_id()")
        async with conn_a.transaction():
            [stored_a] = await append(conn_a, [event_a])
            [stored_b] = await append(conn_b, [event_b])
            await transaction_b.commit()
            assert stored_a.position < stored_b.position

            async def b_is_served() -> bool:
                page, _ = await _feed(client, headers, after)
                return bool(page)

            await wait_until(b_is_served, "the feed to serve B")
            page, after = await _feed(client, headers, after)
            assert [event["event_id"] for event in page] == [str(stored_b.event_id)]
            assert after == stored_b.position > stored_a.position
        await wait_until_readable(isolated_pool, [stored_a.stream_id])
        page, after = await _feed(client, headers, after)
        assert [event["event_id"] for event in page] == [str(stored_a.event_id)]
        assert await _feed(client, headers, after) == ([], after)

        event_a = await next_posting(isolated_pool, key, business_id, first, 300)
        event_b = await next_posting(isolated_pool, key, business_id, second, 400)
        transaction_a = conn_a.transaction()
        await transaction_a.start()
        [stored_a] = await append(conn_a, [event_a])
        async with conn_b.transaction():
            [stored_b] = await append(conn_b, [event_b])
        assert stored_a.position < stored_b.position
        assert await _feed(client, headers, after) == ([], after)
        await transaction_a.commit()
        await wait_until_readable(
            isolated_pool, [stored_a.stream_id, stored_b.stream_id]
        )
        page, last = await _feed(client, headers, after)
        assert [event["event_id"] for event in page] == [
            str(stored_a.event_id),
            str(stored_b.event_id),
        ]
        assert last == stored_b.position


async def _subscribe(
    channel: aio_pika.abc.AbstractChannel, exchange_name: str, business_id: int
) -> aio_pika.abc.AbstractQueue:
    exchange = await channel.get_exchange(exchange_name)
    queue = await channel.declare_queue(
        f"subscriber-{uuid.uuid4().hex}", exclusive=True, auto_delete=True
    )
    await queue.bind(exchange, routing_key=f"{business_id}.#")
    return queue


async def test_a_late_subscriber_sees_every_event_exactly_once_feed_then_queue(
    service: TestClient,
    business: dict[str, object],
    environment: Environment,
    pool: asyncpg.Pool,
) -> None:
    """Proves the subscriber protocol the AsyncAPI document states: events published
    before the subscriber's queue existed (read only from the feed), events in both
    the queue and the feed, and events committed after the feed was read (only in the
    queue) together give, deduplicated by event id, exactly the business's events,
    each once, every stream in version order, each body the same both ways."""
    headers = _headers(business)
    first = await _post(service, headers, "/api/v3/clients", {"business_name": "Early"})
    await _post(
        service,
        headers,
        f"/api/v3/clients/{first}/transactions",
        {"type": "debit", "amount": "1.00"},
    )
    early = {
        event["event_id"] for event in await _business_messages(pool, id_of(business))
    }
    connection = await aio_pika.connect(environment.settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await _subscribe(
            channel, environment.settings.exchange, id_of(business)
        )
        second = await _post(
            service, headers, "/api/v3/clients", {"business_name": "Both ways"}
        )
        await _post(
            service,
            headers,
            f"/api/v3/clients/{first}/deposits",
            {"type": "debit", "amount": "2.00"},
        )
        from_feed, _ = await _read_to_head(service, headers, limit=3)
        await _post(
            service,
            headers,
            f"/api/v3/clients/{second}/transactions",
            {"type": "credit", "amount": "4.00"},
        )
        await _post(service, headers, f"/api/v3/clients/{first}/archive", {})
        stored = await _business_messages(pool, id_of(business))
        from_queue: list[dict[str, object]] = []

        async def drained() -> bool:
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                assert message.message_id == json.loads(message.body)["event_id"]
                from_queue.append(json.loads(message.body))
            return len(from_queue) >= len(stored) - len(early)

        await wait_until(drained, "the subscriber's queue to hold every later event")
        assert await queue.get(no_ack=True, fail=False) is None
    finally:
        await connection.close()

    seen: dict[str, dict[str, object]] = {}
    for event in from_feed + from_queue:
        if event["event_id"] in seen:
            assert seen[str(event["event_id"])] == event
            continue
        seen[str(event["event_id"])] = event
    assert sorted(seen) == sorted(event["event_id"] for event in stored)
    assert len(seen) == len(stored) == 7
    feed_ids = {event["event_id"] for event in from_feed}
    queue_ids = {event["event_id"] for event in from_queue}
    assert early <= feed_ids and early.isdisjoint(queue_ids)
    assert len(early) == 3
    assert len(feed_ids & queue_ids) == 2
    assert len(queue_ids - feed_ids) == 2
    for stream in {event["stream_id"] for event in seen.values()}:
        versions = [
            event["version"] for event in seen.values() if event["stream_id"] == stream
        ]
        assert versions == list(range(1, len(versions) + 1)), stream
