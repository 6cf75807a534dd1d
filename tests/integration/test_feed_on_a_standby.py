"""The event feed read from the hot standby never skips an event that commits late:
the test of tests/integration/test_feed.py again, with the standby as the replica."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp.test_utils import TestClient

from services.command_api.appender import Appender
from shared.store.event_store import NewEvent, append
from tests.integration.event_feed import (
    Headers,
    feed_page,
    key_headers,
)
from tests.integration.replica_service import replica_metric, wait_in_rotation
from tests.integration.scenarios import (
    create_client,
    id_of,
    last_position,
    next_posting,
    wait_until,
    waiting_for_commit_order,
)
from tests.support.environment import Environment
from tests.support.service import http_client
from tests.support.standby import require_standby, standby_caught_up, with_replica


async def _pages_until(
    client: TestClient, headers: Headers, after: int, expected: list[str]
) -> None:
    """Read the page after `after` until it is `expected` (event ids); every page
    read on the way must be a prefix of it (the standby may lag, never skip)."""

    async def reached() -> bool:
        page, _ = await feed_page(client, headers, after)
        ids = [str(event["event_id"]) for event in page]
        assert ids == expected[: len(ids)], (ids, expected)
        return ids == expected

    await wait_until(reached, f"the standby's feed to serve {expected}")


async def _a_then_b_behind_it(
    client: TestClient,
    headers: Headers,
    after: int,
    connections: list[asyncpg.Connection],
    events: tuple[NewEvent, NewEvent],
) -> int:
    """B takes its transaction id first, A appends and stays open, B's append waits
    behind A; the standby's feed serves A, then A and B, never B alone."""
    conn_a, conn_b = connections
    transaction_b = conn_b.transaction()
    await transaction_b.start()
    await conn_b.fetchval("SELECT pg_current_xact_id()")
    transaction_a = conn_a.transaction()
    await transaction_a.start()
    [stored_a] = await append(conn_a, [events[0]])
    appending_b = asyncio.ensure_future(append(conn_b, [events[1]]))
    pid_b = conn_b.get_server_pid()
    await wait_until(
        lambda: waiting_for_commit_order(conn_a, pid_b), "B to wait behind A"
    )
    assert await feed_page(client, headers, after) == ([], after)
    await transaction_a.commit()
    [stored_b] = await appending_b
    await _pages_until(client, headers, after, [str(stored_a.event_id)])
    await transaction_b.commit()
    assert stored_a.position < stored_b.position
    ids = [str(stored_a.event_id), str(stored_b.event_id)]
    await _pages_until(client, headers, after, ids)
    return stored_b.position


async def test_the_feed_on_a_standby_never_skips_an_event_that_commits_late(
    isolated: Environment,
    isolated_pool: asyncpg.Pool,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
    connections: list[asyncpg.Connection],
) -> None:
    """Proves a position cursor is safe on a standby too, twice: B begins first, A
    appends first and commits first, B's append waits behind A; every page the
    standby serves is a prefix of A, B (it may lag, it never serves B without A).
    The standby served the pages: none went to the primary, neither as a fallback
    nor sent there at once (a bypass; polls of 0.5 s keep a view trusted for 1.5 s,
    past any stall of this machine)."""
    await require_standby()
    headers = key_headers(isolated_business)
    business_id = id_of(isolated_business)
    key = isolated.settings.hmac_key.encode()
    first, second = [
        await create_client(isolated_appender, business_id) for _ in range(2)
    ]
    async with http_client(with_replica(isolated, replica_poll_ms=500)) as client:
        await wait_in_rotation(client, True)
        after = await last_position(isolated_pool, business_id)
        await standby_caught_up(isolated_pool)
        for amount in (100, 300):
            events = (
                await next_posting(isolated_pool, key, business_id, first, amount),
                await next_posting(isolated_pool, key, business_id, second, amount),
            )
            after = await _a_then_b_behind_it(
                client, headers, after, connections, events
            )
        assert await replica_metric(client, "ledger_replica_reads_total") >= 4
        assert await replica_metric(client, "ledger_replica_fallbacks_total") == 0
        assert await replica_metric(client, "ledger_replica_bypasses_total") == 0
