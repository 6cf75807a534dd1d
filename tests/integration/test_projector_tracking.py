"""The runner's tracking rows: a stream first tracked by two transactions at once is
applied by one of them only (projections/batch_statement.py: new streams are
INSERTed, never upserted)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence

import asyncpg
import msgspec
import pytest

from projections.checkpoints import PartitionProgress
from projections.runner import Projection, apply_batch, apply_in_transaction
from projections.tracked_versions import TrackedVersions
from shared import events as e
from tests.support.environment import Environment


def _created(stream_id: str) -> e.Envelope:
    return e.Envelope(
        event_id=uuid.uuid4(),
        type="client.created",
        business_id=1,
        stream_id=stream_id,
        version=1,
        position=1,
        schema_version=1,
        recorded_at=dt.datetime.now(dt.UTC),
        metadata=e.Metadata(correlation_id="tracking", principal="test"),
        payload=e.ClientCreated(
            client_id=1, account_id=1, category_id=1, business_name="Tracked"
        ),
        hash="",
    )


async def _forget(conn: asyncpg.Connection | asyncpg.Pool, projection: str) -> None:
    """Remove the test projection's tracking rows and checkpoints."""
    for table in ("projection_tracking", "projection_checkpoint"):
        await conn.execute(f"DELETE FROM {table} WHERE projection = $1", projection)


async def test_a_new_stream_applied_by_two_transactions_at_once_is_applied_once(
    isolated: Environment,
) -> None:
    """A projection that only counts what it is given applies a new stream's first
    event in a transaction left open; a second transaction applies the same event
    meanwhile (neither sees the other's tracking row). The second waits on the
    first's tracking row, which a batch writes before its read models, and fails
    when it commits, with a unique violation, before applying anything: the event
    is applied once, by one committed transaction."""
    name = f"tracking-{uuid.uuid4().hex[:8]}"
    applied: list[str] = []

    async def count(conn: asyncpg.Connection, events: Sequence[e.Envelope]) -> None:
        applied.extend(event.stream_id for event in events)

    projection = Projection(name, count)
    event = _created(f"client-{uuid.uuid4().hex[:8]}")
    first = await asyncpg.connect(isolated.admin_url)
    second = await asyncpg.connect(isolated.admin_url)
    try:
        opened = first.transaction()
        await opened.start()
        assert await apply_in_transaction(first, projection, [event]) == 1
        async with second.transaction():
            racing = asyncio.ensure_future(
                apply_in_transaction(second, projection, [event])
            )
            await asyncio.sleep(0.3)
            assert not racing.done()  # waiting for the first's tracking row
            await opened.commit()
            with pytest.raises(asyncpg.UniqueViolationError):
                await racing
        assert applied == [event.stream_id]
        async with second.transaction():  # applied again: now a duplicate
            assert await apply_in_transaction(second, projection, [event]) == 0
        tracked = await first.fetchval(
            "SELECT version FROM projection_tracking"
            " WHERE projection = $1 AND stream_id = $2",
            name,
            event.stream_id,
        )
        assert tracked == 1
    finally:
        await _forget(first, name)
        await first.close()
        await second.close()


async def test_a_batch_notifies_what_it_applied_and_moves_one_partition_checkpoint(
    isolated: Environment,
) -> None:
    """Proves the batch's one tracking statement also moves a single partition's
    checkpoint (the frame's position, 40) and notifies, at COMMIT, the projection
    with each stream it advanced and the version reached; a duplicate batch notifies
    an empty list and leaves the checkpoint where it is; a rebuild's batch
    (`listed=False`: its tables are not live yet) notifies the bare name."""
    name = f"tracking-{uuid.uuid4().hex[:8]}"

    async def nothing(conn: asyncpg.Connection, events: Sequence[e.Envelope]) -> None:
        return None

    projection = Projection(name, nothing)
    event = _created(f"client-{uuid.uuid4().hex[:8]}")
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(isolated.admin_url)
    conn = await asyncpg.connect(isolated.admin_url)
    await listener.add_listener(
        "ledger_projected", lambda *args: heard.put_nowait(args[3])
    )
    try:
        second = _posted(event.stream_id, 2)
        rounds = [
            ([event], True, f"{name};{event.stream_id}:1"),
            ([event], True, f"{name};"),  # a duplicate: nothing moved
            ([event, second], False, name),  # a rebuild's: lists nothing
        ]
        for events, listed, expected in rounds:
            async with conn.transaction():
                await apply_in_transaction(
                    conn,
                    projection,
                    events,
                    PartitionProgress(1, {0: 40}),
                    None,
                    listed,
                )
                assert heard.empty()  # sent at COMMIT
            async with asyncio.timeout(10):
                assert await heard.get() == expected
            checkpoint = await conn.fetchval(
                "SELECT position_last FROM projection_checkpoint WHERE projection = $1",
                name,
            )
            assert checkpoint == 40
    finally:
        await _forget(conn, name)
        await conn.close()
        await listener.close()


def _posted(stream_id: str, version: int) -> e.Envelope:
    created = _created(stream_id)
    return e.Envelope(**{**msgspec.structs.asdict(created), "version": version})


async def test_a_stale_remembered_version_is_caught_and_applies_once(
    isolated: Environment,
) -> None:
    """Proves the memory cannot apply an event twice: a projector remembers version
    1 of a stream; another applies version 2 without it (as during a hand-over).
    The first is then given versions 2 and 3: it takes 2 for new, its tracking
    UPDATE finds the row moved, the batch rolls back and is applied again from the
    rows. The read model holds versions 1, 2 and 3 once each, and the memory ends
    at 3."""
    name = f"tracking-{uuid.uuid4().hex[:8]}"
    table = f"applied_{uuid.uuid4().hex[:8]}"

    async def record(conn: asyncpg.Connection, events: Sequence[e.Envelope]) -> None:
        await conn.executemany(
            f"INSERT INTO {table} VALUES ($1, $2)",
            [(event.stream_id, event.version) for event in events],
        )

    projection = Projection(name, record)
    stream_id = f"client-{uuid.uuid4().hex[:8]}"
    remembered = TrackedVersions()
    pool = await asyncpg.create_pool(isolated.admin_url, min_size=1, max_size=2)
    await pool.execute(f"CREATE TABLE {table} (stream_id text, version int)")
    try:
        one, two, three = (_posted(stream_id, version) for version in (1, 2, 3))
        assert await apply_batch(pool, projection, [one], None, remembered) == 1
        assert remembered.known([stream_id]) == {stream_id: 1}
        assert await apply_batch(pool, projection, [two]) == 1  # elsewhere
        applied = await apply_batch(pool, projection, [two, three], None, remembered)
        assert applied == 1
        rows = await pool.fetch(f"SELECT version FROM {table} ORDER BY 1")
        assert [row["version"] for row in rows] == [1, 2, 3]
        assert remembered.known([stream_id]) == {stream_id: 3}
    finally:
        await pool.execute(f"DROP TABLE {table}")
        await _forget(pool, name)
        await pool.close()


async def test_a_remembered_batch_locks_its_tracking_rows_before_its_read_models(
    isolated: Environment,
) -> None:
    """Proves the lock order a replay's swap relies on (services/replay/rebuild._lock:
    tracking first, then the read models), for a batch applied from remembered
    versions too (it reads no tracking rows FOR UPDATE): by the time the
    projection's apply runs, the batch's transaction already holds its lock on
    projection_tracking, so a swap waiting for it never holds a read model the
    batch then wants."""
    name = f"tracking-{uuid.uuid4().hex[:8]}"
    held: list[bool] = []

    async def inspect(conn: asyncpg.Connection, events: Sequence[e.Envelope]) -> None:
        held.append(
            await conn.fetchval(
                "SELECT count(*) > 0 FROM pg_locks WHERE pid = pg_backend_pid()"
                " AND relation = 'projection_tracking'::regclass"
                " AND mode = 'RowExclusiveLock'"
            )
        )

    projection = Projection(name, inspect)
    stream_id = f"client-{uuid.uuid4().hex[:8]}"
    remembered = TrackedVersions()
    pool = await asyncpg.create_pool(isolated.admin_url, min_size=1, max_size=2)
    try:
        first, second = (_posted(stream_id, version) for version in (1, 2))
        assert await apply_batch(pool, projection, [first], None, remembered) == 1
        assert remembered.known([stream_id]) == {stream_id: 1}
        assert await apply_batch(pool, projection, [second], None, remembered) == 1
        assert held == [True, True]
    finally:
        await _forget(pool, name)
        await pool.close()
