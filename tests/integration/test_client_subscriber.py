"""shared/client's Subscriber on the real RabbitMQ, bound to the test session's
exchange, with the relay publishing what the real API commits: typed events, a
republished duplicate handled once, a failing handler given the event again, and the
late-subscriber protocol (feed, then queue) delivering every event once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal

import aio_pika
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared import events as e
from shared.bus import broker
from shared.client import LedgerClient, NewClient, RecentEvents, Subscriber
from tests.integration.scenarios import id_of, wait_until
from tests.support.environment import Environment

Handler = Callable[[e.Envelope], Awaitable[None]]


class CountingSeen(RecentEvents):
    """RecentEvents that also records each id it reported as already handled."""

    def __init__(self) -> None:
        super().__init__(capacity=1000)
        self.skipped: list[uuid.UUID] = []

    async def seen(self, event_id: uuid.UUID) -> bool:
        found = await super().seen(event_id)
        if found:
            self.skipped.append(event_id)
        return found


@pytest.fixture
async def api(
    service: TestClient, business: dict[str, object]
) -> AsyncIterator[LedgerClient]:
    base_url = str(service.make_url("")).rstrip("/")
    async with LedgerClient(base_url, str(business["api_key"])) as client:
        yield client


@pytest.fixture
async def published(
    api: LedgerClient, business: dict[str, object], pool: asyncpg.Pool
) -> None:
    """Wait until the business's first event (category.created, written when the
    business was made) has been published: the projections have applied it, so the
    relay had published it before. A queue bound afterwards does not get it."""
    position = await pool.fetchval(
        "SELECT max(position) FROM events WHERE business_id = $1", id_of(business)
    )
    await api.categories(min_position=position)


@asynccontextmanager
async def subscribed(
    environment: Environment,
    business: dict[str, object],
    handler: Handler,
    seen: RecentEvents,
    topics: tuple[str, ...] = ("#",),
) -> AsyncIterator[Subscriber]:
    """A Subscriber on a fresh durable queue for the business's events (bound when
    the block starts); the queue is deleted afterwards."""
    name = f"test-client-subscriber-{uuid.uuid4().hex}"
    subscriber = Subscriber(
        environment.settings.amqp_url,
        name,
        [f"{id_of(business)}.{topic}" for topic in topics],
        handler,
        exchange=environment.settings.exchange,
        seen=seen,
        requeue_pause_s=0.0,
    )
    try:
        async with subscriber:
            yield subscriber
    finally:
        connection = await aio_pika.connect(environment.settings.amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(name)


async def _publish(
    environment: Environment, body: bytes, routing_key: str, message_id: str
) -> None:
    """Publish a message as the relay would (confirmed), to the session's exchange."""
    connection = await aio_pika.connect(environment.settings.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(environment.settings.exchange)
        message = aio_pika.Message(
            body=body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
        )
        await exchange.publish(message, routing_key=routing_key)


async def _messages_left(environment: Environment, queue_name: str) -> int:
    connection = await aio_pika.connect(environment.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        count = queue.declaration_result.message_count
        assert isinstance(count, int)
        return count


@pytest.mark.usefixtures("published")
async def test_the_subscriber_decodes_events_and_handles_a_duplicate_once(
    api: LedgerClient, business: dict[str, object], environment: Environment
) -> None:
    """Proves the subscriber hands the handler typed envelopes (ClientCreated,
    TransactionPosted with exact minor units) from the relay, skips a republished
    copy of a message it already handled (same event id), rejects a body that is not
    an event without calling the handler, and acks everything: after a later event
    arrives, the handler saw each event exactly once and the queue is empty."""
    handled: list[e.Envelope] = []

    async def handle(event: e.Envelope) -> None:
        handled.append(event)

    seen = CountingSeen()
    stop = asyncio.Event()
    async with subscribed(environment, business, handle, seen) as subscriber:
        running = asyncio.ensure_future(subscriber.run(stop))
        try:
            client_id = (
                await api.create_client(NewClient(business_name="Sub"))
            ).body.id
            posted = await api.post_transaction(client_id, "debit", Decimal("12.34"))
            await wait_until(lambda: _count(handled, 2), "two events handled")
            created_event, posting_event = handled
            assert isinstance(created_event.payload, e.ClientCreated)
            assert created_event.payload.client_id == client_id
            assert created_event.payload.business_name == "Sub"
            assert isinstance(posting_event.payload, e.TransactionPosted)
            assert posting_event.payload.amount_minor == 1234
            assert posting_event.payload.entry_type == "debit"
            assert posting_event.payload.transaction_id == posted.body.id
            assert posting_event.business_id == id_of(business)

            routing_key = f"{id_of(business)}.transaction.posted"
            await _publish(environment, b"not an event", routing_key, "garbage")
            await _publish(
                environment,
                broker.envelope_body(posting_event),
                routing_key,
                str(posting_event.event_id),
            )
            later = await api.post_transaction(client_id, "credit", "0.34")
            await wait_until(lambda: _count(handled, 3), "the later event handled")
        finally:
            stop.set()
            await running
        assert [event.event_id for event in handled] == [
            created_event.event_id,
            posting_event.event_id,
            handled[2].event_id,
        ]
        later_payload = handled[2].payload
        assert isinstance(later_payload, e.TransactionPosted)
        assert later_payload.transaction_id == later.body.id
        assert later_payload.amount_minor == 34
        assert seen.skipped == [posting_event.event_id]
        assert await _messages_left(environment, subscriber.queue_name) == 0


@pytest.mark.usefixtures("published")
async def test_a_failing_handler_gets_the_event_again(
    api: LedgerClient, business: dict[str, object], environment: Environment
) -> None:
    """Proves a message is acked only after the handler returns: a handler that
    raises on its first call for the posting gets the same event again (nack,
    requeue), and it then counts as handled once."""
    calls: list[e.Envelope] = []
    handled: list[e.Envelope] = []

    async def handle(event: e.Envelope) -> None:
        calls.append(event)
        if event.type == "transaction.posted" and len(calls) == 2:
            raise RuntimeError("the downstream database is down")
        handled.append(event)

    stop = asyncio.Event()
    async with subscribed(environment, business, handle, RecentEvents()) as subscriber:
        running = asyncio.ensure_future(subscriber.run(stop))
        try:
            client_id = (
                await api.create_client(NewClient(business_name="Fail"))
            ).body.id
            await api.post_transaction(client_id, "debit", 7)
            await wait_until(lambda: _count(handled, 2), "the posting handled")
        finally:
            stop.set()
            await running
        assert [event.type for event in calls] == [
            "client.created",
            "transaction.posted",
            "transaction.posted",
        ]
        assert calls[1].event_id == calls[2].event_id == handled[1].event_id
        assert await _messages_left(environment, subscriber.queue_name) == 0


async def test_catch_up_reads_the_feed_then_the_queue_each_event_once(
    api: LedgerClient,
    business: dict[str, object],
    environment: Environment,
    pool: asyncpg.Pool,
) -> None:
    """Proves the late-subscriber protocol: events committed before the queue was
    bound come from the feed (catch_up), one committed after binding but before
    catch_up arrives both ways and is handled once, and a later one comes from the
    queue: every event of the business the routing keys select (clients and
    transactions, not the category), once, in order."""
    handled: list[e.Envelope] = []

    async def handle(event: e.Envelope) -> None:
        handled.append(event)

    early = (await api.create_client(NewClient(business_name="Early"))).body.id
    stop = asyncio.Event()
    topics = ("client.*", "transaction.*")
    async with subscribed(
        environment, business, handle, RecentEvents(), topics
    ) as subscriber:
        both = (await api.create_client(NewClient(business_name="Both"))).body.id
        last = await subscriber.catch_up(api, after=0, limit=2)
        assert last == handled[-1].position
        assert [event.type for event in handled] == [
            "client.created",
            "client.created",
        ]
        running = asyncio.ensure_future(subscriber.run(stop))
        try:
            await api.post_transaction(early, "debit", Decimal("1.00"))
            await wait_until(lambda: _count(handled, 3), "the posting handled")
        finally:
            stop.set()
            await running
    payloads = [event.payload for event in handled]
    assert [type(payload) for payload in payloads] == [
        e.ClientCreated,
        e.ClientCreated,
        e.TransactionPosted,
    ]
    assert [payload.client_id for payload in payloads] == [early, both, early]  # type: ignore[union-attr]
    assert len({event.event_id for event in handled}) == 3


async def _count(items: list[e.Envelope], expected: int) -> bool:
    assert len(items) <= expected, [item.type for item in items]
    return len(items) == expected
