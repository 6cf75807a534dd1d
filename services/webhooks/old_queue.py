"""The webhook queue a switch of LEDGER_QUEUE_TYPE leaves behind (the other type's:
shared/bus/queue_types.py): the intake, once the queue of its own type is declared
and bound to every business with an endpoint (from then on it gets all their events),
and before it consumes that queue, takes the old one: unbinds it from those
businesses, turns what it holds into deliveries, and deletes it.

Nothing is lost: every event published before the new queue was bound is in the old
one, and the ones after are in the new one. Events in both become their deliveries
once (the unique (endpoint, event) pair), and a sender sends an endpoint's deliveries
in event-position order whatever order they were queued in. An old queue that still
has a consumer (a worker of the other type, not stopped yet) is waited for. API
processes bind a business's key to their type's queue when its first endpoint is
created, so they switch before the workers (deploy/OPERATIONS.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from shared.bus import webhook_queue
from shared.bus.old_queues import delete_if_drained, existing, take_each
from shared.bus.queue_types import other_type
from shared.config import Settings

log = logging.getLogger("ledger.webhooks")
RETRY_S = 1.0
Take = Callable[[AbstractIncomingMessage], Awaitable[None]]


async def take_old_queue(
    settings: Settings,
    connection: AbstractRobustConnection,
    business_ids: Sequence[int],
    take: Take,
) -> None:
    """Hand every message of the other type's webhook queue to `take` (which acks
    or rejects it), then delete the queue; at once if there is none."""
    name = webhook_queue.queue_name(settings.exchange, other_type(settings.queue_type))
    while (found := await existing(connection, name)) is not None:
        if found.consumer_count:
            log.warning("%s: a worker of the other queue type consumes it", name)
        elif await _taken(settings, connection, name, business_ids, take):
            log.info("webhooks: took what %s held and deleted it", name)
            return
        await asyncio.sleep(RETRY_S)


async def _taken(
    settings: Settings,
    connection: AbstractRobustConnection,
    name: str,
    business_ids: Sequence[int],
    take: Take,
) -> bool:
    try:
        async with connection.channel() as channel:
            queue = await channel.declare_queue(name, passive=True)
            exchange = await channel.get_exchange(settings.exchange)
            for business_id in business_ids:
                await queue.unbind(exchange, webhook_queue.business_key(business_id))
            await take_each(connection, name, take)
            return await delete_if_drained(channel, name)
    except aio_pika.exceptions.ChannelPreconditionFailed:
        return False
