"""Queues a switch leaves behind: an earlier version's, or the other LEDGER_QUEUE_TYPE's
(shared/bus/queue_types.py). Their consumers find them, empty them and delete them;
these are the broker's two steps they share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from aiormq import spec

# How long a drain waits for one more message before it asks the broker whether the
# queue is empty, and how many messages it holds unacked at a time.
IDLE_S = 0.2
PREFETCH = 100


async def existing(
    connection: AbstractRobustConnection, name: str
) -> spec.Queue.DeclareOk | None:
    """Queue `name`'s message and consumer counts, None if it does not exist (a
    passive declare, on a channel of its own: the broker closes the channel when
    the queue does not exist)."""
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return None
    finally:
        with contextlib.suppress(Exception):  # closed already, by the broker
            await channel.close()  # and not reopened (a robust channel would)


async def take_each(
    connection: AbstractRobustConnection,
    name: str,
    take: Callable[[AbstractIncomingMessage], Awaitable[None]],
) -> None:
    """Hand each message queue `name` holds to `take` (which acks or rejects it), in
    queue order, until it holds none.

    Through a consumer, not basic.get: a quorum queue with single-active-consumer
    refuses basic.get (RESOURCE_LOCKED), and an old queue is one after a switch back
    from LEDGER_QUEUE_TYPE=quorum. The caller has unbound the queue, so it only
    empties: once no message has come for IDLE_S and the broker counts none ready, it
    is empty. On a channel of its own, closed at the end: a message delivered but not
    taken yet goes back to the queue then, where delete_if_drained sees it."""
    async with connection.channel() as channel:
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await channel.declare_queue(name, passive=True)
        inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        await queue.consume(inbox.put)
        while True:
            try:
                async with asyncio.timeout(IDLE_S):
                    message = await inbox.get()
            except TimeoutError:
                counts = await queue.declare()  # afresh (see delete_if_drained)
                if inbox.empty() and not counts.message_count:
                    return
                continue
            await take(message)


async def delete_if_drained(channel: AbstractChannel, name: str) -> bool:
    """Delete the queue if it has no message and no consumer; False if it has (the
    caller tries again).

    Not with queue.delete's if-empty and if-unused, which the broker would check in
    the same step: a quorum queue refuses them (NOT_IMPLEMENTED, which closes the
    whole connection), and an old queue may be a quorum queue whatever its name says
    (a vhost whose default queue type is quorum). So the counts are read first and
    the queue is deleted plainly. The caller has unbound it before emptying it, so
    nothing reaches it in between but what a process of the old type binds again,
    and that also reaches the new queues (copies)."""
    queue = await channel.declare_queue(name, passive=True)
    # Declared again, not read from the declaration: a robust channel answers a
    # passive declare of a queue it declared before with that earlier queue and its
    # earlier counts.
    counts = await queue.declare()
    if counts.message_count or counts.consumer_count:
        return False
    await channel.queue_delete(name)
    return True
