"""Hop 5's one apply path, for the live projectors (projections/consumer.py) and for a
replay (services/replay/rebuild.py): apply events exactly once in effect.

A batch's read-model changes and each projection's tracking rows (last version per
stream) commit in one transaction: a live projector applies every projection in it
(apply_together), a replay one projection at a time. An event at or below the tracked
version is a duplicate for that projection and is skipped; one above tracked + 1 means
events are missing, and they are read from the event store and applied first. An
event that keeps failing is parked (projection_parked, with its error), never
dropped, and retried when its projector starts again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

import asyncpg
import msgspec

from projections.applied_notice import applied_payload
from projections.batch_statement import (
    Part,
    Tracking,
    Writes,
    apply_in_one_statement,
    fresh_events,
    track,
)
from projections.checkpoints import PartitionProgress, record_partitions
from projections.tracked_versions import StaleTracking, TrackedVersions
from shared import pause_points
from shared.events import Envelope
from shared.store.event_store import load_stream
from shared.store.postgres import CONNECTION_ERRORS
from shared.worker import metrics as worker_metrics

log = logging.getLogger(__name__)
# Applies new events, in order, inside the caller's transaction. Given the whole batch
# at once, a projection may write it with a few set-based statements.
Apply = Callable[[asyncpg.Connection, Sequence[Envelope]], Awaitable[None]]


# The batch's tracking rows, locked. One index lookup per stream (the lateral
# subquery is planned per stream): written as `stream_id = ANY($2)`, a table without
# statistics yet (a rebuild's, or one an import just filled) was planned as a scan of
# all the projection's rows filtered by the array, which grew with every stream.
_TRACKED = """
SELECT tracked.stream_id, tracked.version
FROM unnest($2::text[]) AS batch(stream_id),
LATERAL (SELECT stream_id, version FROM projection_tracking
         WHERE projection = $1 AND stream_id = batch.stream_id
         FOR UPDATE) AS tracked
"""


class Projection(msgspec.Struct, frozen=True):
    name: str
    apply: Apply
    # The common live batch as statements (projections/batch_statement.py).
    writes: Writes | None = None


async def apply_batch(
    pool: asyncpg.Pool,
    projection: Projection,
    events: Sequence[Envelope],
    progress: PartitionProgress | None = None,
    remembered: TrackedVersions | None = None,
) -> int:
    """apply_together for one projection."""
    memory = None if remembered is None else {projection.name: remembered}
    return await apply_together(pool, [projection], events, progress, memory)


async def apply_together(
    pool: asyncpg.Pool,
    projections: Sequence[Projection],
    events: Sequence[Envelope],
    progress: PartitionProgress | None = None,
    remembered: Mapping[str, TrackedVersions] | None = None,
) -> int:
    """Apply events to each of `projections` in one transaction; returns how many
    were new (not duplicates) to the projection that had the most.

    Without `progress` each projection's checkpoint moves to the batch's highest
    position; with it, the partitions' checkpoints move (projections/checkpoints.py).
    With `remembered` (a live projector's, by projection), a batch whose streams it
    holds reads no tracking rows; if one had moved, the batch is applied again from
    the rows.
    """
    try:
        return await _apply(pool, projections, events, progress, remembered)
    except StaleTracking:
        assert remembered is not None
        for memory in remembered.values():
            memory.forget()
        return await _apply(pool, projections, events, progress, remembered)


async def _apply(
    pool: asyncpg.Pool,
    projections: Sequence[Projection],
    events: Sequence[Envelope],
    progress: PartitionProgress | None,
    remembered: Mapping[str, TrackedVersions] | None,
) -> int:
    alone = await _alone(pool, projections, events, progress, remembered)
    if alone is not None:
        return alone
    applied = 0
    async with pool.acquire() as conn, conn.transaction():
        for projection in projections:
            memory = None if remembered is None else remembered[projection.name]
            new = await apply_in_transaction(conn, projection, events, progress, memory)
            applied = max(applied, new)
        if progress is not None and progress.partitions > 1:
            # Last: the partitions' checkpoint rows are shared by every projector,
            # so each is locked only from here to COMMIT.
            for projection in projections:
                await record_partitions(conn, projection.name, progress)
        if applied:
            await pause_points.pause("projector.before_commit")  # test-only
    for memory in (remembered or {}).values():
        memory.committed()
    return applied


async def _alone(
    pool: asyncpg.Pool,
    projections: Sequence[Projection],
    events: Sequence[Envelope],
    progress: PartitionProgress | None,
    remembered: Mapping[str, TrackedVersions] | None,
) -> int | None:
    """The batch in one statement without a transaction block, if it is a live one
    of the common kind (projections/batch_statement.py); None if it is not."""
    if remembered is None or not events:
        return None
    parts: list[Part] = []
    for projection in projections:
        if projection.writes is None:
            return None
        parts.append(
            Part(projection.name, projection.writes, remembered[projection.name])
        )
    position: int | None = None
    if progress is None:
        position = max(event.position for event in events)
    elif progress.partitions == 1:
        position = progress.positions.get(0)
    else:
        return None  # the partitions' checkpoints: record_partitions
    return await apply_in_one_statement(pool, parts, events, position)


async def apply_in_transaction(
    conn: asyncpg.Connection,
    projection: Projection,
    events: Sequence[Envelope],
    progress: PartitionProgress | None = None,
    remembered: TrackedVersions | None = None,
    listed: bool = True,
) -> int:
    """apply_batch inside the caller's transaction (a rebuild applies to its own
    tables: the connection's search_path names them, and passes `listed=False`: its
    NOTIFY must not list versions the live tables do not have yet). With several
    partitions' `progress`, the caller records them afterwards (record_partitions)."""
    streams = sorted({event.stream_id for event in events})
    known = remembered.known(streams) if remembered is not None else None
    if known is None:
        # An empty frame (every partition gets one per relay batch) looks nothing up.
        rows = await conn.fetch(_TRACKED, projection.name, streams) if streams else []
        known = {row["stream_id"]: row["version"] for row in rows}
    # No await unless there is a gap: a coroutine per event costs when a batch holds
    # thousands (a frame, a replay).
    planned = fresh_events(events, known)
    fresh, tracked = planned.events, planned.tracked
    if planned.gaps:
        fresh = await _filled(conn, fresh, known, planned.gaps)
    if not fresh and progress is None:
        return 0
    position = None
    if fresh and progress is None:
        position = max(event.position for event in events)
    elif progress is not None and progress.partitions == 1:
        # One partition: its checkpoint is the projection's own, moved by track().
        position, progress = progress.positions.get(0), None
    # Tracking first, read models after: a batch's first lock is on its tracking rows
    # (read FOR UPDATE, or moved here from remembered versions), the order a replay's
    # swap takes them in (services/replay/rebuild._lock), so neither can deadlock the
    # other; and a stale memory fails the batch before any read-model work.
    name = projection.name
    payload = applied_payload(name, tracked, known) if listed else name
    await track(conn, [Tracking(name, known, tracked, position, payload)])
    if remembered is not None:
        remembered.stage(tracked)
    if fresh:
        await projection.apply(conn, fresh)
    return len(fresh)


async def _filled(
    conn: asyncpg.Connection,
    fresh: list[Envelope],
    known: dict[str, int],
    gaps: list[int],
) -> list[Envelope]:
    """The fresh events with each gap (Fresh.gaps) filled from the store, before
    the event after it."""
    filled: list[Envelope] = []
    reached = dict(known)
    gapped = set(gaps)
    for index, event in enumerate(fresh):
        if index in gapped:
            filled += await load_stream(
                conn,
                event.stream_id,
                after_version=reached.get(event.stream_id, 0),
                up_to_version=event.version - 1,
            )
        filled.append(event)
        reached[event.stream_id] = event.version
    return filled


async def park(
    pool: asyncpg.Pool, projection: str, event: Envelope, error: str
) -> None:
    log.error(
        "%s: parking event %s of %s",
        projection,
        event.event_id,
        event.stream_id,
        extra={
            "event": "projection.parked",
            "projection": projection,
            "event_id": str(event.event_id),
            "stream_id": event.stream_id,
            "position": event.position,
        },
    )
    worker_metrics.PROJECTION_PARKED.labels(projection=projection).inc()
    await pool.execute(
        "INSERT INTO projection_parked"
        " (projection, event_id, stream_id, version, position, error)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        projection,
        event.event_id,
        event.stream_id,
        event.version,
        event.position,
        error,
    )


async def retry_parked(
    pool: asyncpg.Pool, projection: Projection, partitions: int = 1
) -> None:
    """Apply, from the store, the events parked by earlier runs (the cause may be
    gone); each one that applies now leaves the parked list. With partitions, the
    checkpoints stay where the queues' deliveries put them."""
    progress = None if partitions == 1 else PartitionProgress(partitions, {})
    rows = await pool.fetch(
        "SELECT event_id, stream_id, version FROM projection_parked"
        " WHERE projection = $1 ORDER BY position",
        projection.name,
    )
    for row in rows:
        try:
            async with pool.acquire() as conn:
                events = await load_stream(
                    conn,
                    row["stream_id"],
                    after_version=row["version"] - 1,
                    up_to_version=row["version"],
                )
            await apply_batch(pool, projection, events, progress)
        except CONNECTION_ERRORS:
            raise
        except Exception:  # a process edge: still failing, stays parked
            log.exception(
                "%s: parked event %s still fails", projection.name, row["event_id"]
            )
            continue
        await pool.execute(
            "DELETE FROM projection_parked WHERE projection = $1 AND event_id = $2",
            projection.name,
            row["event_id"],
        )
