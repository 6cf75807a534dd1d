"""The subscriber phase's queue: one external subscriber, as a real deployment has.

A durable queue of the bench's own, bound with `#` to the service's topic exchange
(the environment's `exchange`, declared as the client SDK's Subscriber declares it),
and a consumer that acks every message (prefetch 32, the SDK's default) and does
nothing else: what the phase measures is the service's and the broker's cost of one
more queue taking every event, not a subscriber's own work (which runs in the bench
process, outside the service's CPU per posting). Declared before the phase and
deleted after it, with whatever it still holds.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage

from shared.bus import broker

PREFETCH_COUNT = 32


@dataclass
class Acked:
    """How many messages the subscriber acked, and how many its queue still held
    when it was deleted."""

    count: int = 0
    left: int = 0


@contextlib.asynccontextmanager
async def subscriber_queue(
    amqp_url: str, exchange_name: str, queue_name: str
) -> AsyncIterator[Acked]:
    """The queue bound with `#` and consumed (every message acked) until the block
    ends; then the consumer is cancelled and the queue deleted."""
    acked = Acked()

    async def ack(message: AbstractIncomingMessage) -> None:
        await message.ack()
        acked.count += 1

    connection = await broker.connect(amqp_url)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH_COUNT)
        exchange = await broker.declare_exchange(channel, exchange_name)
        queue = await channel.declare_queue(queue_name, durable=True)
        await queue.bind(exchange, routing_key="#")
        tag = await queue.consume(ack)
        try:
            yield acked
        finally:
            await queue.cancel(tag)
            deleted = await queue.delete(if_unused=False, if_empty=False)
            acked.left = int(deleted.message_count or 0)
    finally:
        await connection.close()
