"""GET /api/v3/events: the business's events in the relay's order, never skipping one,
and a late subscriber that reads it and then its queue sees each event exactly once."""

from __future__ import annotations

import asyncio
import json
import uuid

import aio_pika
import asyncpg
from aiohttp.test_utils import TestClient

from services.command_api.appender import Appender
from shared.store.event_store import NewEvent, append
from shared.store.postgres import with_database
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
    waiting_for_commit_order,
)
from tests.support.environment import Environment
from tests.support.service import http_client


async def _serve_a_then_b_behind_it(
    client: TestClient,
    headers: Headers,
    after: int,
    connections: list[asyncpg.Connection],
    events: tuple[NewEvent, NewEvent],
) -> int:
    """Writer B takes its transaction id first; A then appends and stays open. B's
    append waits behind A (the commit-order lock) and the feed serves nothing; once
    A commits, B goes on at a higher position, and the feed serves A, then B, each
    once. The cursor after B."""
    conn_a, conn_b = connections
    event_a, event_b = events
    transaction_b = conn_b.transaction()
    await transaction_b.start()
    await conn_b.fetchval("SELECT pg_current_xact_id()")
    transaction_a = conn_a.transaction()
    await transaction_a.start()
    [stored_a] = await append(conn_a, [event_a])
    appending_b = asyncio.ensure_future(append(conn_b, [event_b]))
    pid_b = conn_b.get_server_pid()
    await wait_until(
        lambda: waiting_for_commit_order(conn_a, pid_b), "B to wait behind A"
    )
    assert await feed_page(client, headers, after) == ([], after)
    await transaction_a.commit()
    [stored_b] = await appending_b
    page, _ = await feed_page(client, headers, after)
    assert [event["event_id"] for event in page] == [str(stored_a.event_id)]
    await transaction_b.commit()
    assert stored_a.position < stored_b.position
    page, last = await feed_page(client, headers, after)
    assert [event["event_id"] for event in page] == [
        str(stored_a.event_id),
        str(stored_b.event_id),
    ]
    assert last == stored_b.position
    assert await feed_page(client, headers, last) == ([], last)
    return last


async def test_the_feed_never_skips_an_event_that_commits_late(
    isolated: Environment,
    isolated_pool: asyncpg.Pool,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
    connections: list[asyncpg.Connection],
) -> None:
    """Proves a position cursor is safe whatever the order of transaction ids: B
    begins first, A appends first and stays open, and B's append waits behind A, so
    positions rise in commit order and the feed serves A, then B, each once, never B
    alone. Done twice, the second time with a write transaction held open in another
    database of the server throughout (which once held the feed back)."""
    headers = key_headers(isolated_business)
    business_id = id_of(isolated_business)
    key = isolated.settings.hmac_key.encode()
    first, second = [
        await create_client(isolated_appender, business_id) for _ in range(2)
    ]
    foreign = await asyncpg.connect(with_database(isolated.admin_url, "postgres"))
    try:
        async with http_client(isolated.settings) as client:
            _, after = await read_to_head(client, headers)
            for round_, amount in enumerate((100, 300)):
                events = (
                    await next_posting(isolated_pool, key, business_id, first, amount),
                    await next_posting(isolated_pool, key, business_id, second, amount),
                )
                if round_:
                    await foreign.execute("BEGIN")
                    await foreign.fetchval("SELECT pg_current_xact_id()")
                after = await _serve_a_then_b_behind_it(
                    client, headers, after, connections, events
                )
    finally:
        await foreign.close()


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
