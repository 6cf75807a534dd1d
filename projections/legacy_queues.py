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
the tracking rows skip. One projector at a time does this (an advisory lock); the
others wait, then find no old queue. The upgrade stops every earlier projector first
(`ledger run` does; deploy/OPERATIONS.md says how for Kubernetes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aio_pika
import asyncpg
from aio_pika.abc import AbstractRobustConnection

from projections.checkpoints import PartitionProgress
from projections.deliveries import decoded, progress_of
from projections.partition_claims import lock_key
from projections.registry import QUEUES
from projections.runner import Projection, apply_batch, park
from shared.bus import broker
from shared.bus.partitions import queue_names
from shared.config import Settings
from shared.events import Envelope
from shared.store.postgres import CONNECTION_ERRORS

log = logging.getLogger(__name__)


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
        for projection in projections:
            names = queue_names(
                settings.queue_prefix, projection.name, settings.projection_partitions
            )
            for partition, name in enumerate(names):
                await _drain(settings, projection, pool, connection, partition, name)
    finally:
        await claims.execute("SELECT pg_advisory_unlock($1)", key)


async def _drain(
    settings: Settings,
    projection: Projection,
    pool: asyncpg.Pool,
    connection: AbstractRobustConnection,
    partition: int,
    name: str,
) -> None:
    if not await _exists(connection, name):
        return
    async with connection.channel() as channel:
        queue = await channel.declare_queue(name, passive=True)
        exchange = await broker.declare_exchange(channel, settings.exchange)
        frames = await broker.declare_frames_exchange(channel, exchange)
        await queue.unbind(frames, routing_key=str(partition))
        applied = 0
        while (message := await queue.get(fail=False)) is not None:
            delivery = await decoded(message)
            if message.processed:
                continue  # rejected: no event
            progress = progress_of([message], settings.projection_partitions)
            applied += await _apply(pool, projection, delivery.events, progress)
            await message.ack()
        await queue.delete(if_unused=False, if_empty=False)
    log.info(
        "%s: applied %d events an earlier version left in %s; deleted it",
        projection.name,
        applied,
        name,
    )


async def _exists(connection: AbstractRobustConnection, name: str) -> bool:
    """Whether queue `name` exists (a passive declare, on a channel of its own:
    the broker closes the channel when it does not)."""
    channel = await connection.channel()
    try:
        await channel.declare_queue(name, passive=True)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        if not channel.is_closed:
            await channel.close()
    return True


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
