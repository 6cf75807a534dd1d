"""The runner's tracking rows: a stream first tracked by two transactions at once is
applied by one of them only (projections/runner.py: new streams are INSERTed, never
upserted)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence

import asyncpg
import pytest

from projections.checkpoints import PartitionProgress
from projections.runner import Projection, apply_in_transaction
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


async def test_a_new_stream_applied_by_two_transactions_at_once_is_applied_once(
    isolated: Environment,
) -> None:
    """A projection that only counts what it is given applies a new stream's first
    event in a transaction left open; a second transaction applies the same event
    meanwhile (neither sees the other's tracking row). The second waits on the
    first's tracking row and fails when it commits, with a unique violation: the
    event is applied by one committed transaction, not two."""
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
        assert applied == [event.stream_id] * 2
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
        for table in ("projection_tracking", "projection_checkpoint"):
            await first.execute(f"DELETE FROM {table} WHERE projection = $1", name)
        await first.close()
        await second.close()


async def test_a_batch_notifies_what_it_applied_and_moves_one_partition_checkpoint(
    isolated: Environment,
) -> None:
    """Proves the batch's one tracking statement also moves a single partition's
    checkpoint (the frame's position, 40) and notifies, at COMMIT, the projection
    with each stream it advanced and the version reached; a duplicate batch notifies
    an empty list and leaves the checkpoint where it is."""
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
        for expected in (f"{name};{event.stream_id}:1", f"{name};"):
            async with conn.transaction():
                await apply_in_transaction(
                    conn, projection, [event], PartitionProgress(1, {0: 40})
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
        for table in ("projection_tracking", "projection_checkpoint"):
            await conn.execute(f"DELETE FROM {table} WHERE projection = $1", name)
        await conn.close()
        await listener.close()
