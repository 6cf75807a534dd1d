"""Upgrading from a projector per projection: drain the queues an earlier version had.

An earlier version ran one projector per projection, each fed by its own partition
queues (`<prefix>balances`, `<prefix>statements`, `.0`, `.1`, ... with partitions).
Now one projector applies every projection from one set of queues
(projections/registry.QUEUES). Frames left in the old queues when the earlier version
stopped must still be applied, and before anything newer of their businesses: a
client's event applied before its category's would be miscounted
(shared/bus/partitions.py). So a projector, once it has declared and bound the new
queues (from then on every frame reaches them) and before it subscribes to them,
takes each old queue that still exists: unbinds it from the frames exchange, applies
what it holds to its projection in queue order (acked after each commit), and
deletes it. Whatever reached both the old queue and the new one is then a duplicate
the tracking rows skip. A switch of LEDGER_QUEUE_TYPE (shared/bus/queue_types.py)
leaves old queues too, the other type's: they are taken the same way, each frame
applied to every projection. One projector at a time does this (an advisory lock); the
others wait, then find no old queue. The upgrade stops every earlier projector first
(`ledger run` does; deploy/OPERATIONS.md says how for Kubernetes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aio_pika
import asyncpg
import msgspec
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from projections.checkpoints import PartitionProgress
from projections.deliveries import decoded, progress_of
from projections.partition_claims import lock_key
from projections.registry import QUEUES
from projections.runner import Projection, apply_batch, park
from shared.bus import broker
from shared.bus.old_queues import delete_if_drained, existing, take_each
from shared.bus.partitions import queue_names
from shared.bus.queue_types import other_type, typed_name
from shared.config import Settings
from shared.events import Envelope
from shared.store.postgres import CONNECTION_ERRORS

log = logging.getLogger(__name__)
RETRY_S = 1.0


async def drain_legacy_queues(
    settings: Settings,
    projections: Sequence[Projection],
    pool: asyncpg.Pool,
    claims: asyncpg.Connection,
    connection: AbstractRobustConnection,
) -> None:
    """Apply and delete each projection's earlier queues that still exist."""
    key = lock_key("legacy", QUEUES)
    await claims.execute("SELECT pg_advisory_lock($1)", key)
    try:
        # A projector consuming the new queues has drained the old ones before it
        # subscribed: an old queue found now was declared again since (by an earlier
        # relay, in a rolling update), after the new queues were bound, so it holds
        # copies of what they hold. It is deleted without being applied (applying it
        # while that projector goes on could put a business's events out of order).
        copies = await _new_queues_consumed(settings, connection)
        for old in _old_queues(settings, projections, copies):
            while True:
                if await _drained(settings, pool, connection, old):
                    break
                await asyncio.sleep(RETRY_S)
    finally:
        await claims.execute("SELECT pg_advisory_unlock($1)", key)


class Old(msgspec.Struct, frozen=True):
    """An old queue: the projections its frames go to, its partition and name, and
    whether it holds only copies (copies=True: deleted, not applied)."""

    projections: tuple[Projection, ...]
    partition: int
    name: str
    copies: bool


def _old_queues(
    settings: Settings, projections: Sequence[Projection], copies: bool
) -> list[Old]:
    """The other queue type's queues (every projection's frames), then an earlier
    version's per projection (classic, named as they were)."""
    prefix = settings.queue_prefix
    partitions = settings.projection_partitions
    other = typed_name(QUEUES, other_type(settings.queue_type))
    groups = [(tuple(projections), other)]
    groups += [((projection,), projection.name) for projection in projections]
    return [
        Old(applied_to, partition, name, copies)
        for applied_to, group in groups
        for partition, name in enumerate(queue_names(prefix, group, partitions))
    ]


async def _drained(
    settings: Settings,
    pool: asyncpg.Pool,
    connection: AbstractRobustConnection,
    old: Old,
) -> bool:
    """Unbind the old queue, apply what it holds (unless copies) and delete it; True
    when it is gone, False to try again: an earlier projector still consumes it
    (stop it first: deploy/OPERATIONS.md), or it was not empty when deleted."""
    found = await existing(connection, old.name)
    if found is None:
        return True
    if found.consumer_count:
        log.warning("%s: an earlier projector still consumes it; waiting", old.name)
        return False
    applied = 0
    try:
        async with connection.channel() as channel:
            queue = await channel.declare_queue(old.name, passive=True)
            exchange = await broker.declare_exchange(channel, settings.exchange)
            frames = await broker.declare_frames_exchange(channel, exchange)
            await queue.unbind(frames, routing_key=str(old.partition))
            await queue.unbind(exchange, routing_key="#")  # an even older binding

            async def take(message: AbstractIncomingMessage) -> None:
                nonlocal applied
                delivery = await decoded(message)
                if message.processed:
                    return  # rejected: no event
                if not old.copies:
                    progress = progress_of([message], settings.projection_partitions)
                    events = delivery.events
                    applied += max(  # as apply_together counts
                        [
                            await _apply(pool, projection, events, progress)
                            for projection in old.projections
                        ]
                    )
                await message.ack()

            await take_each(connection, old.name, take)
            # False: a consumer came, or a message; once more.
            deleted = await delete_if_drained(channel, old.name)
    except aio_pika.exceptions.ChannelPreconditionFailed:
        return False
    log.info(
        "%s: applied %d events an earlier version left in %s; %s",
        ", ".join(projection.name for projection in old.projections),
        applied,
        old.name,
        "deleted it" if deleted else "not deleted yet",
    )
    return deleted


async def _new_queues_consumed(
    settings: Settings, connection: AbstractRobustConnection
) -> bool:
    group = typed_name(QUEUES, settings.queue_type)
    names = queue_names(settings.queue_prefix, group, settings.projection_partitions)
    for name in names:
        found = await existing(connection, name)
        if found is not None and found.consumer_count:
            return True
    return False


async def _apply(
    pool: asyncpg.Pool,
    projection: Projection,
    events: list[Envelope],
    progress: PartitionProgress,
) -> int:
    """Apply a frame; if it fails, each of its events alone, parking any that
    fails (projections/consumer.py retries first; here the old queue goes)."""
    try:
        return await apply_batch(pool, projection, events, progress)
    except CONNECTION_ERRORS:
        raise  # not acked: the next run drains it again
    except Exception:  # a process edge: find the event that fails
        log.exception("%s: a frame of an earlier queue failed", projection.name)
    applied = 0
    no_progress = PartitionProgress(progress.partitions, {})
    for event in events:
        try:
            applied += await apply_batch(pool, projection, [event], no_progress)
        except CONNECTION_ERRORS:
            raise
        except Exception as error:  # a process edge: parked, with its error
            await park(pool, projection.name, event, repr(error))
    await apply_batch(pool, projection, [], progress)
    return applied
