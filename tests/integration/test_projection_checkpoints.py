"""A projection's checkpoint: with partitions, the lowest of its partitions'
checkpoints, right even when two projectors (different partitions) commit at the same
time; with one or more, the frames' position header, never the events' own
positions."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from projections.balances.projector import projection as balances
from projections.checkpoints import PartitionProgress, record_partitions
from projections.runner import apply_batch
from services.command_api.appender import Appender
from shared import events as e
from shared.store.event_store import load_stream
from tests.integration.scenarios import (
    blocked_on_lock,
    create_client,
    id_of,
    wait_until,
)
from tests.support.environment import Environment


async def _checkpoints(admin: asyncpg.Connection, projection: str) -> dict[str, int]:
    rows = await admin.fetch(
        "SELECT projection, position_last FROM projection_checkpoint"
        " WHERE projection = $1 OR projection LIKE $1 || '.%'",
        projection,
    )
    return {row["projection"]: int(row["position_last"]) for row in rows}


async def test_the_last_of_two_racing_partition_commits_sets_the_checkpoint(
    environment: Environment, admin: asyncpg.Connection
) -> None:
    """Partitions 0 and 1 are at 10. Transaction A moves partition 0 to 100 and
    updates the projection's row; B moves partition 1 to 120 and then waits on that
    row (pg_stat_activity shows it); A commits (it saw partition 1 at 10), then B:
    the projection's checkpoint is 100, the lowest of 100 and 120, not A's 10."""
    projection = f"race-{uuid.uuid4().hex[:8]}"
    first = await asyncpg.connect(environment.settings.database_url)
    second = await asyncpg.connect(environment.settings.database_url)
    try:
        async with first.transaction():
            await record_partitions(
                first, projection, PartitionProgress(2, {0: 10, 1: 10})
            )
        assert await _checkpoints(admin, projection) == {
            projection: 10,
            f"{projection}.0": 10,
            f"{projection}.1": 10,
        }
        racing = first.transaction()
        await racing.start()
        await record_partitions(first, projection, PartitionProgress(2, {0: 100}))

        async def commit_second() -> None:
            async with second.transaction():
                await record_partitions(
                    second, projection, PartitionProgress(2, {1: 120})
                )

        waiting = asyncio.ensure_future(commit_second())

        async def second_blocked() -> bool:
            return (
                await blocked_on_lock(admin, "INSERT INTO projection_checkpoint") == 1
            )

        await wait_until(second_blocked, "B to wait on the projection's row")
        await racing.commit()
        await waiting
        assert await _checkpoints(admin, projection) == {
            projection: 100,
            f"{projection}.0": 100,
            f"{projection}.1": 120,
        }
    finally:
        await first.close()
        await second.close()


async def test_one_partition_moves_with_the_frames_position_not_its_events(
    isolated: Environment,
    isolated_pool: asyncpg.Pool,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
) -> None:
    """Proves the checkpoint follows a frame's `position` header, with one partition
    too: a client's events applied with a header below their own positions (events
    that overtook a bulk transaction) leave the balances checkpoint at the header;
    an empty frame with a higher header then moves it there."""
    client_id = await create_client(isolated_appender, id_of(isolated_business))
    events = await load_stream(isolated_pool, e.client_stream(client_id))
    below = events[0].position - 1
    assert await apply_batch(
        isolated_pool, balances, events, PartitionProgress(1, {0: below})
    ) == len(events)
    assert await _checkpoint(isolated_pool) == below
    await apply_batch(
        isolated_pool, balances, [], PartitionProgress(1, {0: events[-1].position})
    )
    assert await _checkpoint(isolated_pool) == events[-1].position


async def _checkpoint(pool: asyncpg.Pool) -> int:
    position: int = await pool.fetchval(
        "SELECT position_last FROM projection_checkpoint WHERE projection = 'balances'"
    )
    return position
