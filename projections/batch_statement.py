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
read-model changes each projection can give as statements: Projection.writes) goes
further (apply_in_one_statement()): every projection the projector applies (balances
and statements) is in the same one statement, each with its tracking clauses and its
writes as more WITH clauses, and it is sent without BEGIN or COMMIT: one round trip
and one commit for all the read models instead of four round trips per projection.
It is still all or nothing: the tracking checks run first (the SELECT reads every
`moved_n` before the other clauses run), and a failure anywhere rolls it all back.
Its first locks are still on the tracking table (a statement locks its tables in the
order it names them, and every tracking clause comes before the writes), the order a
replay's swap takes them in.
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


class Tracking(msgspec.Struct, frozen=True):
    """What a batch applied of one projection: `known` are the tracked versions the
    batch found, `tracked` the versions it has applied up to, `position` the
    checkpoint to move to (None: not moved here), `payload` its NOTIFY's."""

    projection: str
    known: dict[str, int]
    tracked: dict[str, int]
    position: int | None
    payload: str

    def args(self) -> list[object]:
        """The tracking clauses' seven parameters."""
        known, tracked = self.known, self.tracked
        moved = {
            stream: version
            for stream, version in tracked.items()
            if stream in known and version != known[stream]
        }
        new = {
            stream: version
            for stream, version in tracked.items()
            if stream not in known
        }
        return [
            self.projection,
            list(moved),
            list(moved.values()),
            list(new),
            list(new.values()),
            self.position,
            [known[stream] for stream in moved],
        ]


# One projection's tracking clauses (`{n}` tells each projection's apart).
_TRACK = """moved_{n} AS (
    UPDATE projection_tracking tracking SET version = moved.version
    FROM unnest($2::text[], $3::integer[], $7::integer[])
         AS moved(stream_id, version, known)
    WHERE tracking.projection = $1 AND tracking.stream_id = moved.stream_id
      AND tracking.version = moved.known
    RETURNING 1
), new_{n} AS (
    INSERT INTO projection_tracking (projection, stream_id, version)
    SELECT $1, * FROM unnest($4::text[], $5::integer[])
), checkpoint_{n} AS (
    INSERT INTO projection_checkpoint (projection, position_last)
    SELECT $1, $6::bigint WHERE $6::bigint IS NOT NULL
    ON CONFLICT (projection) DO UPDATE SET updated_at = now(),
        position_last = greatest(projection_checkpoint.position_last,
                                 excluded.position_last)
)"""
_MOVED_ALL = "(SELECT count(*) FROM moved_{n}) = cardinality(${streams}::text[])"
# Every NOTIFY, or the stale-tracking error if a row had moved (read first: the
# writes run after the SELECT has read every `moved_{n}`).
_NOTIFY = """
SELECT CASE WHEN {moved_all}
            THEN pg_notify('ledger_projected', payload)
            ELSE projection_tracking_stale() END
FROM unnest(${payloads}::text[]) AS payload
"""
_PARAMETER = re.compile(r"\$(\d+)")


def _statement(
    trackings: Sequence[Tracking], writes: Sequence[Write]
) -> tuple[str, list[object]]:
    """One statement: each projection's tracking clauses (their parameters numbered
    after the ones before), then `writes` as more WITH clauses, then the NOTIFYs;
    and its arguments."""
    clauses: list[str] = []
    moved_all: list[str] = []
    args: list[object] = []
    for number, tracking in enumerate(trackings):
        clauses.append(shifted(_TRACK.format(n=number), len(args)))
        moved_all.append(_MOVED_ALL.format(n=number, streams=len(args) + 2))
        args += tracking.args()
    for number, write in enumerate(writes):
        clauses.append(f"write_{number} AS ({shifted(write.sql, len(args))})")
        args += write.args
    args.append([tracking.payload for tracking in trackings])
    notify = _NOTIFY.format(moved_all=" AND ".join(moved_all), payloads=len(args))
    return "WITH " + ",\n".join(clauses) + notify, args


@functools.lru_cache(maxsize=64)  # a few texts and offsets; renumbered once each
def shifted(sql: str, by: int) -> str:
    """`sql` with its parameters renumbered from $(1 + by), to follow `by` others."""
    if not by:
        return sql
    return _PARAMETER.sub(lambda found: f"${int(found[1]) + by}", sql)


async def track(
    conn: asyncpg.Connection | asyncpg.Pool,
    trackings: Sequence[Tracking],
    writes: Sequence[Write] = (),
) -> None:
    """Record what the batch applied of each projection, with `writes` if given.
    Raises StaleTracking (its statement failed, nothing of it written) if a row had
    moved."""
    assert trackings, "no tracking: the stale check would not run"
    sql, args = _statement(trackings, writes)
    try:
        await conn.execute(sql, *args)
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


class Part(msgspec.Struct, frozen=True):
    """One projection of a live batch applied in one statement: its name, its
    read-model writes and the tracking versions its projector remembers."""

    name: str
    writes: Writes
    remembered: TrackedVersions


async def apply_in_one_statement(
    pool: asyncpg.Pool,
    parts: Sequence[Part],
    events: Sequence[Envelope],
    position: int | None,
) -> int | None:
    """Apply a live batch to every part's projection in one statement, without a
    transaction block, if it is of the common kind for each; returns how many events
    were new, or None (nothing done) if the batch needs the general path. `position`
    is the checkpoint to move each projection to."""
    if pause_points.armed("projector.before_commit"):  # a test holds a transaction
        return None
    streams = {event.stream_id for event in events}
    trackings: list[Tracking] = []
    statements: list[Write] = []
    applied = 0
    for part in parts:
        known = part.remembered.known(streams)
        if known is None:
            return None
        fresh = fresh_events(events, known)
        if fresh.gaps or not fresh.events:
            return None
        writes = part.writes(fresh.events)
        if writes is None:
            return None
        statements += writes
        applied = max(applied, len(fresh.events))
        payload = applied_payload(part.name, fresh.tracked, known)
        trackings.append(Tracking(part.name, known, fresh.tracked, position, payload))
    for part, tracking in zip(parts, trackings, strict=True):
        part.remembered.stage(tracking.tracked)
    await track(pool, trackings, statements)
    for part in parts:
        part.remembered.committed()
    return applied
