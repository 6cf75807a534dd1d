"""A batch's bookkeeping in one statement, and a live batch whole in one statement.

Every batch ends with one statement (track()): the tracking rows of the streams that
advanced, UPDATEd where the batch found them, only from the version found (one
remembered instead of read may be stale: projections/tracked_versions.py), and
INSERTed where it did not; the projection's checkpoint, as
checkpoints.record_position moves it, when given; and the NOTIFY that read-your-writes
waiters wake on (sent at COMMIT), naming what the batch applied
(projections/applied_notice.py). A tracking row not at the version known fails the
statement (projection_tracking_stale(), migration 0014): StaleTracking. A plain
INSERT, no upsert: had another transaction tracked one of the new streams since, its
unique violation fails the batch, which the projector applies again, skipping what
was applied; an upsert would have applied it twice.

A live batch of the common kind (every stream remembered, no gap, one partition, and
read-model changes its projection can give as statements: Projection.writes) goes
further (apply_in_one_statement()): those statements join the same one as more WITH
clauses, and it is sent without BEGIN or COMMIT, one round trip and one implicit
transaction instead of four round trips. It is still all or nothing: the tracking
check runs first (the SELECT reads `moved` before the other clauses run), and a
failure anywhere rolls it all back. Its first lock is still on the tracking table
(a statement locks its tables in the order it names them), the order a replay's swap
takes them in.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

import asyncpg
import msgspec

from projections.applied_notice import applied_payload
from projections.tracked_versions import StaleTracking, TrackedVersions
from shared import pause_points
from shared.events import Envelope


class Write(msgspec.Struct, frozen=True):
    """One data-modifying statement of a batch, its parameters numbered from $1."""

    sql: str
    args: tuple[object, ...]


# A projection's read-model changes for `events` as statements that do not read
# each other's writes (they run on one snapshot), or None if it cannot give them so.
Writes = Callable[[Sequence[Envelope]], list[Write] | None]

_TRACK_PARAMETERS = 8
_TRACK = """
WITH moved AS (
    UPDATE projection_tracking tracking SET version = moved.version
    FROM unnest($2::text[], $3::integer[], $7::integer[])
         AS moved(stream_id, version, known)
    WHERE tracking.projection = $1 AND tracking.stream_id = moved.stream_id
      AND tracking.version = moved.known
    RETURNING 1
), new AS (
    INSERT INTO projection_tracking (projection, stream_id, version)
    SELECT $1, * FROM unnest($4::text[], $5::integer[])
), checkpoint AS (
    INSERT INTO projection_checkpoint (projection, position_last)
    SELECT $1, $6::bigint WHERE $6::bigint IS NOT NULL
    ON CONFLICT (projection) DO UPDATE SET updated_at = now(),
        position_last = greatest(projection_checkpoint.position_last,
                                 excluded.position_last)
){writes}
SELECT CASE WHEN (SELECT count(*) FROM moved) = cardinality($2::text[])
            THEN pg_notify('ledger_projected', $8)
            ELSE projection_tracking_stale() END
"""
_PARAMETER = re.compile(r"\$(\d+)")


def _statement(writes: Sequence[Write]) -> tuple[str, list[object]]:
    """The tracking statement with `writes` as more WITH clauses (their parameters
    renumbered after the tracking's eight), and those writes' arguments."""
    clauses: list[str] = []
    args: list[object] = []
    for number, write in enumerate(writes):
        shifted = _shifted(write.sql, _TRACK_PARAMETERS + len(args))
        clauses.append(f", write_{number} AS ({shifted})")
        args += write.args
    return _TRACK.format(writes="".join(clauses)), args


@functools.lru_cache(maxsize=64)  # a few texts and offsets; renumbered once each
def _shifted(sql: str, by: int) -> str:
    return _PARAMETER.sub(lambda found: f"${int(found[1]) + by}", sql)


async def track(
    conn: asyncpg.Connection | asyncpg.Pool,
    projection: str,
    known: dict[str, int],
    tracked: dict[str, int],
    position: int | None,
    payload: str | None,
    writes: Sequence[Write] = (),
) -> None:
    """Record what the batch applied, with `writes` if given: `known` are the tracked
    versions the batch found, `tracked` the versions it has applied up to. Raises
    StaleTracking (its statement failed, nothing of it written) if a row had moved."""
    moved = {
        stream: version
        for stream, version in tracked.items()
        if stream in known and version != known[stream]
    }
    new = {
        stream: version for stream, version in tracked.items() if stream not in known
    }
    sql, args = _statement(writes)
    try:
        await conn.execute(
            sql,
            projection,
            list(moved),
            list(moved.values()),
            list(new),
            list(new.values()),
            position,
            [known[stream] for stream in moved],
            payload or projection,
            *args,
        )
    except asyncpg.SerializationError as error:  # projection_tracking_stale()
        raise StaleTracking() from error


class Fresh(msgspec.Struct, frozen=True):
    """A batch's events above the tracked versions, in order; the versions they
    bring each stream to; and the indexes in `events` of those whose stream's
    previous events are missing (deliveries that never came, or not yet)."""

    events: list[Envelope]
    tracked: dict[str, int]
    gaps: list[int]


def fresh_events(events: Sequence[Envelope], known: dict[str, int]) -> Fresh:
    """What of `events` is new against the `known` versions (Fresh)."""
    tracked = dict(known)
    fresh: list[Envelope] = []
    gaps: list[int] = []
    for event in events:
        version = tracked.get(event.stream_id, 0)
        if event.version <= version:
            continue  # applied before
        if event.version > version + 1:
            gaps.append(len(fresh))
        fresh.append(event)
        tracked[event.stream_id] = event.version
    return Fresh(fresh, tracked, gaps)


async def apply_in_one_statement(
    pool: asyncpg.Pool,
    name: str,
    writes: Writes,
    events: Sequence[Envelope],
    position: int | None,
    remembered: TrackedVersions,
) -> int | None:
    """Apply a live batch in one statement, without a transaction block, if it is of
    the common kind; returns how many events were new, or None (nothing done) if
    the batch needs the general path. `position` is the checkpoint to move to."""
    if pause_points.armed("projector.before_commit"):  # a test holds a transaction
        return None
    known = remembered.known({event.stream_id for event in events})
    if known is None:
        return None
    fresh = fresh_events(events, known)
    if fresh.gaps or not fresh.events:
        return None
    statements = writes(fresh.events)
    if statements is None:
        return None
    payload = applied_payload(name, fresh.tracked, known)
    remembered.stage(fresh.tracked)
    await track(pool, name, known, fresh.tracked, position, payload, statements)
    remembered.committed()
    return len(fresh.events)
