"""Queues a switch leaves behind: an earlier version's, or the other LEDGER_QUEUE_TYPE's
(shared/bus/queue_types.py). Their consumers find them, empty them and delete them;
these are the broker's two steps they share."""

from __future__ import annotations

import contextlib

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aiormq import spec


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
    counts = queue.declaration_result
    if counts.message_count or counts.consumer_count:
        return False
    await channel.queue_delete(name)
    return True
