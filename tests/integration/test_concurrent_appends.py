"""Optimistic concurrency on one stream: at the store, and retried in the appender."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

import asyncpg
import pytest

from services.command_api.appender import Appender
from services.command_api.submissions import IdempotencyClaim
from shared import events as e
from shared.errors import ConcurrencyConflict
from shared.store.event_store import append, load_stream
from shared.store.new_events import NewEvent
from tests.integration.scenarios import (
    blocked_on_lock,
    cents,
    create_client,
    decoded,
    id_of,
    key_row_held,
    next_posting,
    stream_versions,
    submit,
    transaction,
    wait_until,
)
from tests.support.environment import Environment


async def test_loser_of_a_concurrent_append_gets_a_conflict(
    environment: Environment,
    pool: asyncpg.Pool,
    appenders: Callable[[], Appender],
    business: dict[str, object],
) -> None:
    """Two transactions, lined up by a barrier inside their transactions, both append
    version 2 of one client stream: exactly one commits, the other raises
    ConcurrencyConflict, and the stream holds only the winner's event."""
    business_id = id_of(business)
    client_id = await create_client(appenders(), business_id)
    key = environment.settings.hmac_key.encode()
    first = await next_posting(pool, key, business_id, client_id, 1_000)
    second = await next_posting(pool, key, business_id, client_id, 2_000)
    assert first.version == second.version == 2
    barrier = asyncio.Barrier(2)

    async def write(event: NewEvent) -> list[e.Envelope]:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_current_xact_id()")  # the transaction is open
            # Bounded: if the other writer failed before the barrier, fail here too
            # rather than hold this transaction (and the server's xmin) open forever.
            await asyncio.wait_for(barrier.wait(), 10)
            return await append(conn, [event])

    outcomes = await asyncio.gather(write(first), write(second), return_exceptions=True)

    winners = [outcome for outcome in outcomes if isinstance(outcome, list)]
    losers = [
        outcome for outcome in outcomes if isinstance(outcome, ConcurrencyConflict)
    ]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert f"(client-{client_id}, 2)" in losers[0].detail
    [stored] = winners[0]
    history = await load_stream(pool, e.client_stream(client_id))
    assert [event.version for event in history] == [1, 2]
    assert history[1].event_id == stored.event_id
    assert history[1].position == stored.position


async def test_a_stale_cached_state_catches_up_and_both_processes_succeed(
    pool: asyncpg.Pool,
    appenders: Callable[[], Appender],
    business: dict[str, object],
) -> None:
    """Process X caches a client at version 1, process Y posts version 2, then X posts:
    X decides on its cached state without a read (batch_decider.py), its write of
    version 2 conflicts with Y's, and X decides again from the stream's head, so its
    debit lands at version 3 and its balance counts Y's debit too."""
    business_id = id_of(business)
    x, y = appenders(), appenders()
    client_id = await create_client(x, business_id)

    by_y = await submit(y, transaction(business_id, client_id, 700))
    by_x = await submit(x, transaction(business_id, client_id, 300))

    assert (by_y.version, by_x.version) == (2, 3)
    assert cents(decoded(by_y.body)["balance_after"]) == 700
    assert cents(decoded(by_x.body)["balance_after"]) == 1_000
    assert await stream_versions(pool, e.client_stream(client_id)) == [1, 2, 3]


async def test_a_command_racing_another_process_is_retried_and_both_succeed(
    environment: Environment,
    pool: asyncpg.Pool,
    admin: asyncpg.Connection,
    appenders: Callable[[], Appender],
    business: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Process Y has inserted version 2 but not committed (a test transaction holds the
    row its Idempotency-Key needs); process X, whose cache says version 1, inserts
    version 2 too and waits; when Y commits, X's insert conflicts and X retries inside
    the appender: both commands succeed, Y at version 2 and X at version 3."""
    caplog.set_level(logging.INFO, logger="services.command_api.appender")
    business_id = id_of(business)
    x, y = appenders(), appenders()
    client_id = await create_client(x, business_id)
    key = f"race-{uuid.uuid4()}"
    async with key_row_held(environment.admin_url, business_id, key) as release:
        claim = IdempotencyClaim(key, "y")
        by_y = asyncio.ensure_future(
            submit(y, transaction(business_id, client_id, 700), claim)
        )
        await wait_until(
            lambda: blocked_on_lock(admin, "WITH answers AS"),  # keeping answers
            "Y to wait, its version 2 inserted but not committed",
        )
        by_x = asyncio.ensure_future(
            submit(x, transaction(business_id, client_id, 300))
        )
        await wait_until(
            lambda: blocked_on_lock(admin, "INSERT INTO events"),
            "X to wait on Y's uncommitted version 2",
        )
        await release()
        y_result, x_result = await asyncio.gather(by_y, by_x)

    assert (y_result.version, x_result.version) == (2, 3)
    assert cents(decoded(y_result.body)["balance_after"]) == 700
    assert cents(decoded(x_result.body)["balance_after"]) == 1_000
    assert await stream_versions(pool, e.client_stream(client_id)) == [1, 2, 3]
    conflicts = [r for r in caplog.records if "batch conflict" in r.getMessage()]
    assert len(conflicts) == 1
