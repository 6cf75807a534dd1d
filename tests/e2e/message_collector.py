"""A test's own queue on the ledger's exchange, bound to every routing key (or the
one given): the message ids, or the parsed bodies, of everything published while it
is open, in arrival order. The crash and takeover tests compare the ids with the
store to show that nothing published was lost and what was published twice; the
personal-data tests read the bodies."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import aio_pika.abc

from shared.config import Settings

Message = aio_pika.abc.AbstractIncomingMessage


@asynccontextmanager
async def collected_message_ids(
    settings: Settings, name: str
) -> AsyncIterator[list[str]]:
    """A list that grows with each message's id until the block ends; the queue is
    `test.<name>-<random>`, exclusive, and goes with the connection."""
    async with _collected(settings, name, "#", lambda m: str(m.message_id)) as ids:
        yield ids


@asynccontextmanager
async def collected_bodies(
    settings: Settings, name: str, routing_key: str = "#"
) -> AsyncIterator[list[Any]]:
    """The same, each message's body parsed as JSON, bound with `routing_key`."""
    async with _collected(
        settings, name, routing_key, lambda m: json.loads(m.body)
    ) as bodies:
        yield bodies


@asynccontextmanager
async def _collected(
    settings: Settings, name: str, routing_key: str, take: Callable[[Message], Any]
) -> AsyncIterator[list[Any]]:
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(
            f"test.{name}-{uuid.uuid4().hex[:8]}", exclusive=True, auto_delete=True
        )
        await queue.bind(exchange, routing_key=routing_key)
        received: list[Any] = []

        async def collect(message: Message) -> None:
            received.append(take(message))
            await message.ack()

        await queue.consume(collect)
        yield received
    finally:
        await connection.close()
