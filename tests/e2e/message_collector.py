"""A test's own queue on the ledger's exchange, bound to every routing key: the message
ids of everything published while it is open, in arrival order. The crash and
takeover tests compare them with the store to show that nothing published was lost
and what was published twice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import aio_pika.abc

from shared.config import Settings


@asynccontextmanager
async def collected_message_ids(
    settings: Settings, name: str
) -> AsyncIterator[list[str]]:
    """A list that grows with each message's id until the block ends; the queue is
    `test.<name>-<random>`, exclusive, and goes with the connection."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(
            f"test.{name}-{uuid.uuid4().hex[:8]}", exclusive=True, auto_delete=True
        )
        await queue.bind(exchange, routing_key="#")
        received: list[str] = []

        async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            received.append(str(message.message_id))
            await message.ack()

        await queue.consume(collect)
        yield received
    finally:
        await connection.close()
