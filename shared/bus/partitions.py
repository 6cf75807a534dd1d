"""Projection partitions: which queue of a projection a business's events go to.

Every event message carries a business slot, a stable hash of its business id
(crc32 modulo BUSINESS_SLOTS; never Python's hash(), which changes per process). With
LEDGER_PROJECTION_PARTITIONS = N, the projectors have N queues and partition p takes
the slots s with s % N == p, so all of a business's events land in one queue, in the
relay's (commit) order. Each queue has a single active consumer (RabbitMQ's
x-single-active-consumer), so several projector processes share the work while
each business is still applied in order by one of them at a time.

Why the business and not the stream: the read models join streams of one business (a
client.created counts the client in its category's row, which category.created
inserts), so a client's events applied before its category's would be miscounted.
Ordering per business keeps every such dependency, as a single queue did; businesses
share nothing, so they may run in parallel. The cost: one business's events are never
spread over several projectors.
"""

from __future__ import annotations

import zlib

from shared.config import BUSINESS_SLOTS


def business_slot(business_id: int) -> int:
    return zlib.crc32(str(business_id).encode()) % BUSINESS_SLOTS


def partition_of_slot(slot: int, partitions: int) -> int:
    return slot % partitions


def slots_of(partition: int, partitions: int) -> list[int]:
    """The business slots partition `partition` of `partitions` takes."""
    return [slot for slot in range(BUSINESS_SLOTS) if slot % partitions == partition]


def queue_names(prefix: str, name: str, partitions: int) -> list[str]:
    """The queue names of a set (the projectors', projections/registry.QUEUES, or an
    earlier version's per projection), partition 0 first: `<prefix><name>` for one
    partition, else `<prefix><name>.<p>`."""
    if partitions == 1:
        return [prefix + name]
    return [f"{prefix}{name}.{partition}" for partition in range(partitions)]
