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

from services.command_api.appender import Appender
from shared.store.event_store import NewEvent, append
from tests.integration.event_feed import (
    Headers,
    business_messages,
    feed_page,
    key_headers,
    post_ok,
    read_to_head,
)
from tests.integration.scenarios import (
    create_client,
    id_of,
    next_posting,
    wait_until,
    wait_until_readable,
)
from tests.support.environment import Environment
from tests.support.service import http_client


@pytest.fixture
async def connections(isolated: Environment) -> AsyncIterator[list[asyncpg.Connection]]:
    """Two writers as the service role."""
    conns = [await asyncpg.connect(isolated.settings.database_url) for _ in range(2)]
    yield conns
    for conn in conns:
        await conn.close()


async def _serve_b_then_late_a(
    client: TestClient,
    headers: Headers,
    after: int,
    connections: list[asyncpg.Connection],
    events: tuple[NewEvent, NewEvent],
    pool: asyncpg.Pool,
) -> int:
    """Writer B takes its transaction id first; A then appends (lower position) and
    stays open while B appends (higher position) and commits. The feed serves B, and
    its `next_after` is B's position, above A's; once A commits, the feed from there
    serves A, exactly once. The cursor after A."""
    conn_a, conn_b = connections
    event_a, event_b = events
    transaction_b = conn_b.transaction()
    await transaction_b.start()
    await conn_b.fetchval("SELECT pg_current_xact_id()")
    async with conn_a.transaction():
        [stored_a] = await append(conn_a, [event_a])
        [stored_b] = await append(conn_b, [event_b])
        await transaction_b.commit()
        assert stored_a.position < stored_b.position

        async def b_is_served() -> bool:
            page, _ = await feed_page(client, headers, after)
            return bool(page)

        await wait_until(b_is_served, "the feed to serve B")
        page, after = await feed_page(client, headers, after)
        assert [event["event_id"] for event in page] == [str(stored_b.event_id)]
        assert after == stored_b.position > stored_a.position
    await wait_until_readable(pool, [stored_a.stream_id])
    page, after = await feed_page(client, headers, after)
    assert [event["event_id"] for event in page] == [str(stored_a.event_id)]
    assert await feed_page(client, headers, after) == ([], after)
    return after


async def _hold_b_back_behind_open_a(
    client: TestClient,
    headers: Headers,
    after: int,
    connections: list[asyncpg.Connection],
    events: tuple[NewEvent, NewEvent],
    pool: asyncpg.Pool,
) -> None:
    """A' appends (lower position) and stays open while B' appends (higher position,
    later transaction) and commits: the feed serves nothing until A' commits, then
    A', B'."""
    conn_a, conn_b = connections
    event_a, event_b = events
    transaction_a = conn_a.transaction()
    await transaction_a.start()
    [stored_a] = await append(conn_a, [event_a])
    async with conn_b.transaction():
        [stored_b] = await append(conn_b, [event_b])
    assert stored_a.position < stored_b.position
    assert await feed_page(client, headers, after) == ([], after)
    await transaction_a.commit()
    await wait_until_readable(pool, [stored_a.stream_id, stored_b.stream_id])
    page, last = await feed_page(client, headers, after)
    assert [event["event_id"] for event in page] == [
        str(stored_a.event_id),
        str(stored_b.event_id),
    ]
    assert last == stored_b.position


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
    headers = key_headers(isolated_business)
    business_id = id_of(isolated_business)
    key = isolated.settings.hmac_key.encode()
    first, second = [
        await create_client(isolated_appender, business_id) for _ in range(2)
    ]
    async with http_client(isolated.settings) as client:
        await wait_until_readable(isolated_pool)
        _, after = await read_to_head(client, headers)
        events = (
            await next_posting(isolated_pool, key, business_id, first, 100),
            await next_posting(isolated_pool, key, business_id, second, 200),
        )
        after = await _serve_b_then_late_a(
            client, headers, after, connections, events, isolated_pool
        )
        events = (
            await next_posting(isolated_pool, key, business_id, first, 300),
            await next_posting(isolated_pool, key, business_id, second, 400),
        )
        await _hold_b_back_behind_open_a(
            client, headers, after, connections, events, isolated_pool
        )


async def _subscribe(
    channel: aio_pika.abc.AbstractChannel, exchange_name: str, business_id: int
) -> aio_pika.abc.AbstractQueue:
    exchange = await channel.get_exchange(exchange_name)
    queue = await channel.declare_queue(
        f"subscriber-{uuid.uuid4().hex}", exclusive=True, auto_delete=True
    )
    await queue.bind(exchange, routing_key=f"{business_id}.#")
    return queue


Events = list[dict[str, object]]


async def _write_while_subscribed(
    service: TestClient,
    environment: Environment,
    pool: asyncpg.Pool,
    business: dict[str, object],
    first: int,
    early_count: int,
) -> tuple[Events, Events, Events]:
    """With a queue subscribed: a second client and a deposit to the first (then in
    both the queue and the feed), the feed read to its head, then a credit to the
    second client and the first archived (only in the queue). The events read from
    the feed, those drained from the queue (every one after the `early_count` stored
    before), and the business's stored events."""
    headers = key_headers(business)
    connection = await aio_pika.connect(environment.settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await _subscribe(
            channel, environment.settings.exchange, id_of(business)
        )
        second = await post_ok(
            service, headers, "/api/v3/clients", {"business_name": "Both ways"}
        )
        await post_ok(
            service,
            headers,
            f"/api/v3/clients/{first}/deposits",
            {"type": "debit", "amount": "2.00"},
        )
        from_feed, _ = await read_to_head(service, headers, limit=3)
        await post_ok(
            service,
            headers,
            f"/api/v3/clients/{second}/transactions",
            {"type": "credit", "amount": "4.00"},
        )
        await post_ok(service, headers, f"/api/v3/clients/{first}/archive", {})
        stored = await business_messages(pool, id_of(business))
        from_queue: list[dict[str, object]] = []

        async def drained() -> bool:
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                assert message.message_id == json.loads(message.body)["event_id"]
                from_queue.append(json.loads(message.body))
            return len(from_queue) >= len(stored) - early_count

        await wait_until(drained, "the subscriber's queue to hold every later event")
        assert await queue.get(no_ack=True, fail=False) is None
    finally:
        await connection.close()
    return from_feed, from_queue, stored


def _deduplicated(
    from_feed: Events, from_queue: Events
) -> dict[str, dict[str, object]]:
    """Each event once, by id; one seen both ways has the same body both ways."""
    seen: dict[str, dict[str, object]] = {}
    for event in from_feed + from_queue:
        if event["event_id"] in seen:
            assert seen[str(event["event_id"])] == event
            continue
        seen[str(event["event_id"])] = event
    return seen


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
    headers = key_headers(business)
    first = await post_ok(
        service, headers, "/api/v3/clients", {"business_name": "Early"}
    )
    await post_ok(
        service,
        headers,
        f"/api/v3/clients/{first}/transactions",
        {"type": "debit", "amount": "1.00"},
    )
    early = {
        event["event_id"] for event in await business_messages(pool, id_of(business))
    }
    from_feed, from_queue, stored = await _write_while_subscribed(
        service, environment, pool, business, first, len(early)
    )

    seen = _deduplicated(from_feed, from_queue)
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
