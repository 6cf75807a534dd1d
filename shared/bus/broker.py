"""RabbitMQ: connect, declare the topology, publish events with publisher confirms.

Two exchanges, two audiences:
- **Subscribers**: one durable topic exchange (`ledger.events`), one persistent
  message per event, routing key `<business_id>.<event type>` (the AsyncAPI
  document). Published without `mandatory`: with no subscriber queue bound, the
  broker drops them at once, cheaply, and the batch does not fail.
- **Projectors**: a durable direct exchange of their own, `<exchange>.frames`, one
  persistent *frame* per relay batch and partition: the JSON array of that
  partition's events (each element the very bytes of its subscriber message), with
  headers `business_slot` (the partition) and `position` (the batch's last). Every
  partition gets a frame each batch, empty or not, so its checkpoint moves with the
  batch (projections/checkpoints.py). Frames are `mandatory`: one that no queue takes
  comes back and fails the batch, never dropped. The broker, the relay and the
  projectors then pay per batch, not per event.

Each projection has LEDGER_PROJECTION_PARTITIONS durable queues (shared/bus/
partitions.py), each with a single active consumer, bound to the frames exchange with
its partition number as the routing key. Earlier versions bound them to the topic
exchange (one partition) or to a headers exchange `<exchange>.partitions`: those
bindings are removed when the queues are declared, and the messages they left in a
queue are still applied (a single event, or a watermark).
"""

from __future__ import annotations

import asyncio
import uuid
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
from pamqp import commands as spec

from shared.bus.batch_publish import Outgoing, write_batch
from shared.bus.partitions import business_slot, partition_of_slot, queue_names
from shared.bus.queue_types import queue_arguments, typed_name
from shared.events import Envelope

_envelope_encoder = msgspec.json.Encoder()
# The AMQP type of a frame (publish_frames), and of an earlier version's per-partition
# watermarks, which a queue may still hold after an upgrade.
FRAME_TYPE = "ledger.frame"
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


async def declare_frames_exchange(
    channel: AbstractChannel, exchange: AbstractExchange
) -> AbstractExchange:
    """The projectors' own direct exchange, beside the subscribers' topic exchange."""
    return await channel.declare_exchange(
        exchange.name + ".frames", aio_pika.ExchangeType.DIRECT, durable=True
    )


async def declare_projection_queues(
    channel: AbstractChannel,
    exchange: AbstractExchange,
    prefix: str,
    projection: str,
    partitions: int,
    queue_type: str = "classic",
) -> list[AbstractQueue]:
    """Declare a projection's partition queues of the type (partition 0 first; their
    names shared/bus/queue_types.typed_name's), bound to the frames exchange by
    partition number; an earlier version's bindings go.

    Each queue has a single active consumer: RabbitMQ delivers it to one consumer at
    a time and, when that consumer's connection dies, redelivers its unacked messages
    to the next one in their queue order, so a business's events are never applied
    by two projectors at once nor out of order.
    """
    frames = await declare_frames_exchange(channel, exchange)
    queues = []
    group = typed_name(projection, queue_type)
    for partition, name in enumerate(queue_names(prefix, group, partitions)):
        queue = await _declare_single_active(channel, name, queue_type)
        await queue.bind(frames, routing_key=str(partition))
        await queue.unbind(exchange, routing_key="#")
        queues.append(queue)
    # The headers exchange that routed single events to partitions before frames:
    # deleting it removes its bindings (it is declared by no one any more).
    await channel.exchange_delete(exchange.name + ".partitions")
    return queues


async def _declare_single_active(
    channel: AbstractChannel, name: str, queue_type: str
) -> AbstractQueue:
    try:
        return await channel.declare_queue(
            name, durable=True, arguments=queue_arguments(queue_type)
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
    """An event's subscriber message as aio-pika builds it: the reference `outgoing`
    is held to (the relay itself writes `outgoing`, through publish_batch)."""
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


def outgoing(event: Envelope, body: bytes) -> Outgoing:
    """An event's subscriber message for publish_batch: the very properties aio-pika
    builds for `message(event)` (tests/unit/test_subscriber_messages.py compares
    their bytes)."""
    return Outgoing(
        routing_key=routing_key(event),
        properties=spec.Basic.Properties(
            content_type="application/json",
            correlation_id=event.metadata.correlation_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT.value,
            headers=msgspec.structs.asdict(message_headers(event)),
            message_id=str(event.event_id),
            message_type=event.type,
            priority=0,
            timestamp=event.recorded_at,
        ),
        body=body,
    )


PUBLISH_TIMEOUT_S = 30.0  # for a batch's write and its confirms


async def publish_confirmed(
    exchange: AbstractExchange,
    events: Sequence[Envelope],
    bodies: Sequence[bytes] | None = None,
) -> None:
    """Publish every event to the subscribers' topic exchange and return once the
    broker has confirmed all of them (`bodies`: their envelope_body, if made).

    The channel must have publisher confirms on; a nack or a lost connection raises,
    and the caller (the relay) then publishes the batch again: at-least-once. Not
    mandatory: a message no subscriber queue takes is dropped by the broker. Written
    in one go (shared/bus/batch_publish.py), not message by message.
    """
    async with asyncio.timeout(PUBLISH_TIMEOUT_S):
        await (await write_events(exchange, events, bodies))


async def write_events(
    exchange: AbstractExchange,
    events: Sequence[Envelope],
    bodies: Sequence[bytes] | None = None,
) -> asyncio.Future[list[object]]:
    """publish_confirmed's write: the confirms are the returned future's, to await
    (within PUBLISH_TIMEOUT_S) before the batch counts as published."""
    if bodies is None:
        bodies = [envelope_body(event) for event in events]
    messages = [
        outgoing(event, body) for event, body in zip(events, bodies, strict=True)
    ]
    assert isinstance(exchange, aio_pika.Exchange)  # its channel is the publisher's
    async with asyncio.timeout(PUBLISH_TIMEOUT_S):
        confirms = await write_batch(exchange.channel, exchange.name, messages)
    return asyncio.gather(*confirms)


def frame_bodies(
    events: Sequence[Envelope], bodies: Sequence[bytes], partitions: int
) -> list[bytes]:
    """Per partition, the JSON array of its events' bodies, in the batch's order."""
    parts: list[list[bytes]] = [[] for _ in range(partitions)]
    for event, body in zip(events, bodies, strict=True):
        slot = business_slot(event.business_id)
        parts[partition_of_slot(slot, partitions)].append(body)
    return [b"[" + b",".join(part) + b"]" for part in parts]


async def publish_frames(
    frames: AbstractExchange,
    events: Sequence[Envelope],
    bodies: Sequence[bytes],
    position: int,
    partitions: int,
) -> None:
    """Publish one frame per partition, empty or not, in one write, and wait for the
    confirms: the events of `events` (whose envelope_body are `bodies`) that belong
    to it, and `position`, up to which the relay has given it everything. Mandatory:
    a frame no queue takes fails the batch (the channel must raise on returns)."""
    async with asyncio.timeout(PUBLISH_TIMEOUT_S):
        await (await write_frames(frames, events, bodies, position, partitions))


async def write_frames(
    frames: AbstractExchange,
    events: Sequence[Envelope],
    bodies: Sequence[bytes],
    position: int,
    partitions: int,
) -> asyncio.Future[list[object]]:
    """publish_frames's write: the confirms are the returned future's, to await."""
    messages = [
        Outgoing(
            str(partition),
            spec.Basic.Properties(
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT.value,
                message_type=FRAME_TYPE,
                headers={"business_slot": partition, "position": position},
                message_id=uuid.uuid4().hex,  # a return finds its batch by it
            ),
            body,
        )
        for partition, body in enumerate(frame_bodies(events, bodies, partitions))
    ]
    assert isinstance(frames, aio_pika.Exchange)  # its channel is the publisher's
    async with asyncio.timeout(PUBLISH_TIMEOUT_S):
        confirms = await write_batch(frames.channel, frames.name, messages, True)
    return asyncio.gather(*confirms)


envelope_decoder = msgspec.json.Decoder(Envelope)
frame_decoder = msgspec.json.Decoder(list[Envelope])
