"""RabbitMQ: connect, declare the topology, publish events with publisher confirms.

Topology: one durable topic exchange (`ledger.events`); routing key
`<business_id>.<event type>`; each projection has its own durable queue bound with `#`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aio_pika
import msgspec
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractQueue,
    AbstractRobustConnection,
)

from shared.events import Envelope

_envelope_encoder = msgspec.json.Encoder()


class MessageHeaders(msgspec.Struct, kw_only=True, frozen=True):
    """The AMQP headers of every event message (documented in the AsyncAPI file)."""

    type: str
    schema_version: int
    stream_id: str
    version: int
    position: int
    business_id: int


def envelope_body(event: Envelope) -> bytes:
    """The JSON body of an event's message; the HTTP feed serves exactly these bytes."""
    return _envelope_encoder.encode(event)


def message_headers(event: Envelope) -> MessageHeaders:
    return MessageHeaders(
        type=event.type,
        schema_version=event.schema_version,
        stream_id=event.stream_id,
        version=event.version,
        position=event.position,
        business_id=event.business_id,
    )


async def connect(amqp_url: str) -> AbstractRobustConnection:
    return await aio_pika.connect_robust(amqp_url, timeout=10)


async def declare_exchange(channel: AbstractChannel, name: str) -> AbstractExchange:
    return await channel.declare_exchange(
        name, aio_pika.ExchangeType.TOPIC, durable=True
    )


async def declare_queue(
    channel: AbstractChannel, exchange: AbstractExchange, name: str
) -> AbstractQueue:
    queue = await channel.declare_queue(name, durable=True)
    await queue.bind(exchange, routing_key="#")
    return queue


def routing_key(event: Envelope) -> str:
    return f"{event.business_id}.{event.type}"


def message(event: Envelope) -> aio_pika.Message:
    return aio_pika.Message(
        body=envelope_body(event),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(event.event_id),
        correlation_id=event.metadata.correlation_id,
        type=event.type,
        timestamp=event.recorded_at,
        headers=msgspec.structs.asdict(message_headers(event)),
    )


async def publish_confirmed(
    exchange: AbstractExchange, events: Sequence[Envelope]
) -> None:
    """Publish every event and return once the broker has confirmed all of them.

    The channel must have publisher confirms on; a nack or a lost connection raises,
    and the caller (the relay) then publishes the batch again: at-least-once.
    """
    await asyncio.gather(
        *(
            exchange.publish(message(event), routing_key=routing_key(event), timeout=30)
            for event in events
        )
    )


envelope_decoder = msgspec.json.Decoder(Envelope)
