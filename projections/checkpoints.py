"""Hop 5: a projection's checkpoint, the global position it has applied up to.

The readers (readiness lag, a query's read position, an import's visible rows) read
one row per projection in projection_checkpoint. Checkpoints move with the `position`
header of the relay's frames, never with the events' own positions (a frame may carry
events that overtook a bulk transaction: services/outbox_relay/frames.py). With one
partition the projector writes that row itself. With several, a partition's row
(`<projection>.<partition>`) moves with what that partition's queue delivered: the
relay's frame after each batch, whose `position` header says the partition was given
everything up to the batch's last position (so a partition without events moves
too); the projection's row is then the lowest of its partitions' rows, and it only
ever grows.

Two projectors (different partitions) commit concurrently. Each takes the lock on the
projection's row before it reads the partitions' rows, in a statement of its own:
under READ COMMITTED that statement sees every partition row committed before the
lock was granted, so the last of two racing transactions computes from both, and the
projection's row never stays behind once they have committed.
"""

from __future__ import annotations

import asyncpg
import msgspec


class PartitionProgress(msgspec.Struct, frozen=True):
    """The highest position a batch delivered per partition (of `partitions`)."""

    partitions: int
    positions: dict[int, int]


def partition_checkpoint(projection: str, partition: int) -> str:
    return f"{projection}.{partition}"


async def record_position(
    conn: asyncpg.Connection, projection: str, position: int
) -> None:
    await conn.execute(
        "INSERT INTO projection_checkpoint (projection, position_last) VALUES ($1, $2)"
        " ON CONFLICT (projection) DO UPDATE SET updated_at = now(),"
        " position_last = greatest(projection_checkpoint.position_last, $2)",
        projection,
        position,
    )


async def record_partitions(
    conn: asyncpg.Connection, projection: str, progress: PartitionProgress
) -> None:
    """Move the partitions' rows, then the projection's row to their lowest (with
    one partition, the projection's row itself)."""
    if progress.partitions == 1:
        if 0 in progress.positions:
            await record_position(conn, projection, progress.positions[0])
        return
    for partition in sorted(progress.positions):
        await record_position(
            conn,
            partition_checkpoint(projection, partition),
            progress.positions[partition],
        )
    await conn.execute(
        "INSERT INTO projection_checkpoint (projection, position_last) VALUES ($1, 0)"
        " ON CONFLICT (projection) DO NOTHING",
        projection,
    )
    await conn.execute(
        "SELECT 1 FROM projection_checkpoint WHERE projection = $1 FOR UPDATE",
        projection,
    )
    names = [
        partition_checkpoint(projection, partition)
        for partition in range(progress.partitions)
    ]
    await conn.execute(
        "UPDATE projection_checkpoint SET updated_at = now(),"
        " position_last = greatest(position_last, coalesce(("
        "  SELECT min(position_last) FROM projection_checkpoint"
        "  WHERE projection = ANY($2::text[]) HAVING count(*) = $3), 0))"
        " WHERE projection = $1",
        projection,
        names,
        len(names),
    )
