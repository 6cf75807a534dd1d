"""publish_batch against the real broker: every message arrives once, in order, with
its properties, once confirmed; a batch the broker refuses fails instead of being
taken for published."""

from __future__ import annotations

import uuid

import aio_pika
import pytest

from shared import events as e
from shared.bus import broker
from shared.bus.batch_publish import publish_batch
from tests.support.environment import Environment
from tests.support.stored_events import client_deleted


def _event(position: int) -> e.Envelope:
    return client_deleted(
        business_id=1 + position % 3, client_id=position, position=position
    )


async def test_a_confirmed_batch_arrives_whole_in_order_with_its_properties(
    isolated: Environment,
) -> None:
    """Proves a batch of 300 events published with publish_batch is in a bound queue
    once each, in order, each with its body, message id, type and headers, by the
    time publish_confirmed returns."""
    events = [_event(position) for position in range(1, 301)]
    connection = await aio_pika.connect(isolated.settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            f"batch-{uuid.uuid4().hex[:8]}",
            aio_pika.ExchangeType.TOPIC,
            auto_delete=True,
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key="#")
        await broker.publish_confirmed(exchange, events)
        received = []
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            received.append(message)
    finally:
        await connection.close()
    assert [message.body for message in received] == [
        broker.envelope_body(event) for event in events
    ]
    assert [message.message_id for message in received] == [
        str(event.event_id) for event in events
    ]
    assert [message.type for message in received] == ["client.deleted"] * 300
    assert [message.headers["position"] for message in received] == list(range(1, 301))
    assert {message.delivery_mode for message in received} == {
        aio_pika.DeliveryMode.PERSISTENT
    }


async def test_a_batch_to_a_missing_exchange_fails(isolated: Environment) -> None:
    """Proves a refused batch raises: publishing to an exchange that does not exist
    makes the broker close the channel, and publish_batch raises instead of
    returning as if confirmed."""
    connection = await aio_pika.connect(isolated.settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        messages = [
            broker.outgoing(event, broker.envelope_body(event)) for event in [_event(1)]
        ]
        with pytest.raises(Exception) as failed:
            await publish_batch(
                channel, f"missing-{uuid.uuid4().hex}", messages, timeout_s=10
            )
        assert not isinstance(failed.value, TimeoutError)
    finally:
        await connection.close()


async def test_messages_no_queue_takes_are_confirmed_and_dropped(
    isolated: Environment,
) -> None:
    """Proves subscriber messages cost nothing more when nobody subscribes: a batch to
    a topic exchange with no queue bound is confirmed (publish_confirmed returns, no
    error, nothing returned), so the relay's batch goes on."""
    connection = await aio_pika.connect(isolated.settings.amqp_url)
    try:
        channel = await connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        exchange = await channel.declare_exchange(
            f"nobody-{uuid.uuid4().hex[:8]}",
            aio_pika.ExchangeType.TOPIC,
            auto_delete=True,
        )
        await broker.publish_confirmed(exchange, [_event(n) for n in range(1, 51)])
        assert not channel.is_closed
    finally:
        await connection.close()
