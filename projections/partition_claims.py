"""Hop 5: the order in which a projector subscribes to the partitions.

Every projector subscribes to every partition queue (projections/registry.QUEUES; the
locks are keyed by that name), and RabbitMQ
makes the first subscriber of a single-active-consumer queue its active consumer. So
that several projectors share the partitions instead of the first one started taking
them all, each claims a member index: the lowest i < partitions whose PostgreSQL
advisory lock (member key, i) it can take, held for the life of its session. It
subscribes to partition i at once, then marks i ready (advisory lock (ready key, i)).
It subscribes to each other partition once that partition is marked ready (its member
is the active consumer there; this one waits as the standby) or, for a partition no
live projector has claimed, after ADOPT_DELAY_S (it may then be the active consumer).

The locks only order subscriptions. Order and exclusivity rest on single active
consumer alone: if a lock's connection is lost, projectors may balance worse, never
apply a business out of order. A partition does not move back when its member restarts:
the standby that took it over keeps it until it stops.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from aio_pika.abc import AbstractQueue

log = logging.getLogger(__name__)
ADOPT_DELAY_S = 5.0
RECHECK_S = 0.5
# Session-level advisory locks taken with two int4 keys show in pg_locks with the
# first key as classid, the second as objid, and objsubid 2; they are per database
# (another ledger database on the same server has its own projectors).
_READY = """
SELECT objid::int8 AS partition FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid::int8 = $1
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def lock_key(kind: str, projection: str) -> int:
    """A stable int4 lock key per (kind, projection) (never Python's hash())."""
    return zlib.crc32(f"ledger.projector.{kind}.{projection}".encode()) & 0x7FFF_FFFF


def subscription_order(member: int | None, partitions: int) -> list[int]:
    """Every partition, the member's own first, then the next ones around."""
    start = member or 0
    return [(start + step) % partitions for step in range(partitions)]


async def claim_member(
    conn: asyncpg.Connection, projection: str, partitions: int
) -> int | None:
    """The lowest free member index, now held by this session; None if all are."""
    key = lock_key("member", projection)
    for index in range(partitions):
        if await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", key, index):
            return index
    return None


async def ready_partitions(conn: asyncpg.Connection, projection: str) -> set[int]:
    """The partitions whose member has subscribed to them."""
    rows = await conn.fetch(_READY, lock_key("ready", projection))
    return {int(row["partition"]) for row in rows}


async def subscribe_in_turn(
    conn: asyncpg.Connection,
    projection: str,
    queues: Sequence[AbstractQueue],
    consume: Callable[[AbstractQueue], Awaitable[object]],
) -> int | None:
    """Subscribe to every queue in the order above; returns the member index."""
    member = await claim_member(conn, projection, len(queues))
    log.info("%s: member %s of %d partitions", projection, member, len(queues))
    pending = subscription_order(member, len(queues))
    if member is not None:
        await consume(queues[member])
        pending.remove(member)
        await conn.execute(
            "SELECT pg_try_advisory_lock($1, $2)", lock_key("ready", projection), member
        )
    adopt_at = asyncio.get_running_loop().time() + ADOPT_DELAY_S
    while pending:
        ready = await ready_partitions(conn, projection)
        adopting = asyncio.get_running_loop().time() >= adopt_at
        for partition in [p for p in pending if adopting or p in ready]:
            await consume(queues[partition])
            pending.remove(partition)
        if pending:
            await asyncio.sleep(RECHECK_S)
    return member
