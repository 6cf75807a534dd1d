"""RabbitMQ: connect, declare the topology, publish events with publisher confirms.

Topology: one durable topic exchange (`ledger.events`); routing key
`<business_id>.<event type>`. Each projection has LEDGER_PROJECTION_PARTITIONS durable
queues (shared/bus/partitions.py), each with a single active consumer. One partition:
the
queue `<prefix><projection>` is bound with `#` to the topic exchange, as it always was.
More: a durable headers exchange `<exchange>.partitions`, bound with `#` to the topic
exchange (an exchange-to-exchange binding, so the relay still publishes each event
once), routes each message on its `business_slot` header to its partition's queue.
The headers exchange needs no broker plugin (the consistent-hash exchange would, and
is not enabled on our brokers) and routes deterministically: the relay and every
projector compute the same slot, and a test can say which queue an event is in.
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
from aio_pika.exceptions import ChannelPreconditionFailed

from shared.bus.partitions import business_slot, queue_names, slots_of
from shared.events import Envelope

_envelope_encoder = msgspec.json.Encoder()
# The AMQP type of the relay's per-partition watermarks (publish_watermarks).
WATERMARK_TYPE = "ledger.watermark"


class MessageHeaders(msgspec.Struct, kw_only=True, frozen=True):
    """The AMQP headers of every event message (documented in the AsyncAPI file)."""

    type: str
    schema_version: int
    stream_id: str
    version: int
    position: int
    business_id: int
    # crc32(str(business_id)) % 64: the projections' queues are partitioned on it.
    business_slot: int


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
        business_slot=business_slot(event.business_id),
    )


async def connect(amqp_url: str, timeout_s: float = 10.0) -> AbstractRobustConnection:
    """A robust connection, or the error; a connection that failed to open (or was
    cancelled while opening) is closed here. Left to the garbage collector, aio-pika
    schedules its close from `__del__`, which outside the event loop's thread only
    leaves a never-awaited coroutine behind (a warning, an error under pytest)."""
    connection = aio_pika.RobustConnection(aio_pika.connection.make_url(amqp_url))
    try:
        await connection.connect(timeout=timeout_s)
    except BaseException:
        await asyncio.shield(connection.close())
        raise
    return connection


async def declare_exchange(channel: AbstractChannel, name: str) -> AbstractExchange:
    return await channel.declare_exchange(
        name, aio_pika.ExchangeType.TOPIC, durable=True
    )


class QueueArgumentsChanged(RuntimeError):
    """A projection queue exists with other arguments than this version declares."""


async def declare_projection_queues(
    channel: AbstractChannel,
    exchange: AbstractExchange,
    prefix: str,
    projection: str,
    partitions: int,
) -> list[AbstractQueue]:
    """Declare and bind a projection's partition queues (partition 0 first).

    Each queue has a single active consumer: RabbitMQ delivers it to one consumer at
    a time and, when that consumer's connection dies, redelivers its unacked messages
    to the next one in their queue order, so a business's events are never applied
    by two projectors at once nor out of order.
    """
    names = queue_names(prefix, projection, partitions)
    if partitions == 1:
        queue = await _declare_single_active(channel, names[0])
        await queue.bind(exchange, routing_key="#")
        return [queue]
    by_slot = await declare_partition_exchange(channel, exchange)
    queues = []
    for partition, name in enumerate(names):
        queue = await _declare_single_active(channel, name)
        for slot in slots_of(partition, partitions):
            await queue.bind(
                by_slot, arguments={"x-match": "all", "business_slot": slot}
            )
        queues.append(queue)
    return queues


async def declare_partition_exchange(
    channel: AbstractChannel, exchange: AbstractExchange
) -> AbstractExchange:
    """The headers exchange that routes to the partition queues (partitions > 1)."""
    by_slot = await channel.declare_exchange(
        exchange.name + ".partitions", aio_pika.ExchangeType.HEADERS, durable=True
    )
    await by_slot.bind(exchange, routing_key="#")
    return by_slot


async def _declare_single_active(channel: AbstractChannel, name: str) -> AbstractQueue:
    try:
        return await channel.declare_queue(
            name, durable=True, arguments={"x-single-active-consumer": True}
        )
    except ChannelPreconditionFailed as error:
        raise QueueArgumentsChanged(
            f"queue {name} was declared without x-single-active-consumer by an"
            " earlier version: stop the relay, let the projectors drain it, delete it"
            " (deploy/OPERATIONS.md, Running several processes), then start again"
        ) from error


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


async def publish_watermarks(
    by_slot: AbstractExchange, position: int, partitions: int
) -> None:
    """Tell every partition queue that the relay has given it everything up to
    `position` (its projectors' checkpoints move on it: projections/checkpoints.py).

    Published after the batch's events are confirmed, so each watermark is behind
    them in its queue; only to the partitions' headers exchange, never to
    subscribers. Slot p routes to partition p, as p < partitions.
    """
    await asyncio.gather(
        *(
            by_slot.publish(
                aio_pika.Message(
                    body=b"",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    type=WATERMARK_TYPE,
                    headers={"business_slot": partition, "position": position},
                ),
                routing_key="",
                timeout=30,
            )
            for partition in range(partitions)
        )
    )


envelope_decoder = msgspec.json.Decoder(Envelope)
