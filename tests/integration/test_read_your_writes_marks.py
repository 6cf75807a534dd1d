"""The read-your-writes waiter's marks (services/http/projection_wait.py): a command's
waiter is checked once every projection has notified since its mark, yet a waiter
whose notifications never come is still answered, by the waiter's timer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from projections.registry import PROJECTIONS
from services import bootstrap
from services.http.projection_wait import ProjectionWaiter
from tests.integration.scenarios import wait_until
from tests.support.environment import Environment

WAIT_S = 10.0


@pytest.fixture
async def waiter(
    isolated: Environment, isolated_pool: asyncpg.Pool
) -> AsyncIterator[ProjectionWaiter]:
    """A waiter on the database where no projector runs (the test writes the
    tracking rows and sends the notifications itself)."""
    listener = await bootstrap.read_your_writes_listener(isolated.settings)
    waiter = ProjectionWaiter(isolated_pool, listener)
    await waiter.start()
    yield waiter
    await waiter.stop()
    await listener.close()


@pytest.fixture
async def isolated_admin(isolated: Environment) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(isolated.admin_url)
    yield conn
    await conn.close()


async def _apply(conn: asyncpg.Connection, stream_id: str, projection: str) -> None:
    """What a projector's batch records for the stream's version 1, without its
    notification."""
    await conn.execute(
        "INSERT INTO projection_tracking (projection, stream_id, version)"
        " VALUES ($1, $2, 1)",
        projection,
        stream_id,
    )


async def _notify(conn: asyncpg.Connection, payload: str) -> None:
    """A projector's `ledger_projected` notification (projections/runner.py)."""
    await conn.execute("SELECT pg_notify('ledger_projected', $1)", payload)


async def test_a_marked_waiter_is_answered_even_when_no_projection_notifies(
    waiter: ProjectionWaiter, isolated_admin: asyncpg.Connection
) -> None:
    """Proves a missed notification only delays: a waiter marked before its
    (pretended) commit, whose version every projection then records without a
    NOTIFY, is answered True by the waiter's own checks."""
    stream_id = f"client-{uuid.uuid4().int % 10**12}"
    mark = waiter.mark()
    waiting = asyncio.create_task(waiter.wait_for_stream(stream_id, 1, WAIT_S, mark))
    for projection in PROJECTIONS:
        await _apply(isolated_admin, stream_id, projection)
    assert await waiting is True


async def test_a_marked_waiter_is_answered_once_the_last_projection_notifies(
    waiter: ProjectionWaiter, isolated_admin: asyncpg.Connection
) -> None:
    """Proves the notifications resolve a marked waiter: each projection records the
    version and notifies with its name, one after the other, as projectors do; the
    waiter is still waiting before the last one and answers True after it."""
    stream_id = f"client-{uuid.uuid4().int % 10**12}"
    mark = waiter.mark()
    waiting = asyncio.create_task(waiter.wait_for_stream(stream_id, 1, WAIT_S, mark))
    for projection in PROJECTIONS:
        assert not waiting.done()
        await _apply(isolated_admin, stream_id, projection)
        await _notify(isolated_admin, projection)
    assert await waiting is True


async def test_a_waiter_is_answered_from_the_notifications_alone(
    waiter: ProjectionWaiter, isolated_admin: asyncpg.Connection
) -> None:
    """Proves the notifications' `stream:version` lists answer a waiter without a
    query: every projection notifies that it applied version 2 of the stream, and no
    tracking row exists at all (a check by query could only answer False), yet the
    waiter for version 2 answers True; the one for version 3 is still waiting."""
    stream_id = f"client-{uuid.uuid4().int % 10**12}"
    mark = waiter.mark()
    second = asyncio.create_task(waiter.wait_for_stream(stream_id, 2, WAIT_S, mark))
    third = asyncio.create_task(waiter.wait_for_stream(stream_id, 3, WAIT_S, mark))
    await asyncio.sleep(0)  # both registered before the notifications
    for projection in PROJECTIONS:
        assert not second.done()
        await _notify(isolated_admin, f"{projection};client-0:9 {stream_id}:2")
    assert await second is True
    assert not third.done()
    third.cancel()


async def test_a_waiter_is_not_answered_by_one_projection_s_notifications(
    waiter: ProjectionWaiter, isolated_admin: asyncpg.Connection
) -> None:
    """Proves one projection's word is not enough: a single projection notifies
    version 5 of the stream twice; the waiter for version 1 stays waiting until the
    other projections record it in their tracking rows and notify without a list
    (as a projector of an earlier version does), and then answers True."""
    stream_id = f"client-{uuid.uuid4().int % 10**12}"
    first, *others = PROJECTIONS
    mark = waiter.mark()
    waiting = asyncio.create_task(waiter.wait_for_stream(stream_id, 1, WAIT_S, mark))
    await asyncio.sleep(0)
    await _apply(isolated_admin, stream_id, first)
    for _ in range(2):
        await _notify(isolated_admin, f"{first};{stream_id}:5")

    async def heard_both() -> bool:  # mark() counts the notifications heard
        return waiter.mark() >= mark + 2

    await wait_until(heard_both, "both notifications heard", WAIT_S)
    assert not waiting.done()
    for projection in others:
        await _apply(isolated_admin, stream_id, projection)
        await _notify(isolated_admin, projection)
    assert await waiting is True


async def test_a_waiter_that_comes_after_its_notifications_is_answered_from_them(
    waiter: ProjectionWaiter, isolated_admin: asyncpg.Connection
) -> None:
    """Proves the versions heard are kept, not only for streams already waited on:
    every projection notifies version 1 of a stream nobody waits for yet (and no
    tracking row exists); a waiter that comes afterwards answers True at once."""
    stream_id = f"client-{uuid.uuid4().int % 10**12}"
    mark = waiter.mark()
    for projection in PROJECTIONS:
        await _notify(isolated_admin, f"{projection};{stream_id}:1")

    async def heard_all() -> bool:
        return waiter.mark() >= mark + len(PROJECTIONS)

    await wait_until(heard_all, "every notification heard", WAIT_S)
    assert await waiter.wait_for_stream(stream_id, 1, WAIT_S, waiter.mark()) is True


async def test_a_list_cut_short_sends_its_waiters_to_a_check(
    waiter: ProjectionWaiter, isolated_admin: asyncpg.Connection
) -> None:
    """Proves a list cut short (`+`: streams left out of a payload too long) hides
    no version: every projection records version 1 in its tracking rows and
    notifies a list that does not name the stream but is cut short; the waiter
    answers True, from the tracking rows (a check by query)."""
    stream_id = f"client-{uuid.uuid4().int % 10**12}"
    mark = waiter.mark()
    waiting = asyncio.create_task(waiter.wait_for_stream(stream_id, 1, WAIT_S, mark))
    await asyncio.sleep(0)
    for projection in PROJECTIONS:
        await _apply(isolated_admin, stream_id, projection)
        await _notify(isolated_admin, f"{projection};client-0:1 +")
    assert await waiting is True


async def test_stop_ends_the_waiter_even_when_a_notification_wakes_it_at_once(
    isolated: Environment, isolated_pool: asyncpg.Pool
) -> None:
    """A stop that comes with a notification (the wake set, then the task cancelled
    in the same turn of the loop) ends the waiter. Under Python 3.11 the loop's
    `asyncio.wait_for` returned the wake and swallowed the cancellation, so the loop
    went on polling and `stop()` never returned: a test's app cleanup hung until
    CI's deadline."""
    listener = await bootstrap.read_your_writes_listener(isolated.settings)
    try:
        for _ in range(3):
            waiter = ProjectionWaiter(isolated_pool, listener)
            await waiter.start()
            await asyncio.sleep(0)  # the loop waits for its wake
            waiter._wake.set()
            async with asyncio.timeout(WAIT_S):
                await waiter.stop()
    finally:
        await listener.close()


async def test_a_position_this_process_committed_is_waited_for_without_a_lookup(
    waiter: ProjectionWaiter, isolated_admin: asyncpg.Connection
) -> None:
    """Proves a query's X-Ledger-Min-Position needs no lookup of its event when this
    process committed it: the position has no event in the store (a lookup finds
    nothing, and the checkpoints, absent, never reach it), yet once every projection
    notifies the version committed there, the wait answers True."""
    stream_id = f"client-{uuid.uuid4().int % 10**12}"
    position = 10**15 + uuid.uuid4().int % 10**9
    waiter.committed(position, stream_id, 4, waiter.mark())
    waiting = asyncio.create_task(waiter.wait_for_position(position, WAIT_S))
    await asyncio.sleep(0.05)
    for projection in PROJECTIONS:
        assert not waiting.done()
        await _notify(isolated_admin, f"{projection};{stream_id}:4")
    assert await asyncio.wait_for(waiting, WAIT_S) is True
