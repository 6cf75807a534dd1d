"""/metrics of the workers' side: the relay's backlog and each projection's lag read
at scrape (and /readyz's lag beside them), and a worker's own counters beside its
probes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from projections.balances.projector import projection as balances
from projections.checkpoints import PartitionProgress, record_partitions
from projections.runner import apply_batch
from projections.statements.projector import projection as statements
from services.cli import worker_health
from services.cli.businesses import provision_business
from shared import events as e
from shared.store.event_store import Cursor, read_after, save_cursor
from shared.store.postgres import create_pool
from tests.integration.metrics_samples import Samples, family, parse, sample, scrape
from tests.integration.scenarios import (
    head_cursor,
)
from tests.support.environment import (
    Environment,
    create_environment,
    drop_environment,
    free_port,
)
from tests.support.service import http_client


@pytest.fixture
async def quiet_environment(
    servers: tuple[str, str],
) -> AsyncIterator[Environment]:
    """A database of its own where no relay or projector runs, so that the backlog
    and lag are exactly what the test makes them."""
    env = await create_environment(*servers, tag="lag")
    yield env
    await drop_environment(env)


async def _three_clients_unpublished(
    client: TestClient,
    conn: asyncpg.Connection,
    business: dict[str, Any],
) -> tuple[int, Samples, list[e.Envelope]]:
    """Create three clients (202: nothing projects them), scrape, then move the
    relay's cursor to the head and read every event. How many events, the scrape,
    and the events."""
    for number in range(3):
        created = await client.post(
            "/api/v3/clients",
            json={"business_name": f"L{number}"},
            headers={
                "Authorization": f"Bearer {business['api_key']}",
                "Prefer": "respond-async",
            },
        )
        assert created.status == 202
    total = await conn.fetchval("SELECT count(*) FROM events")
    behind = await scrape(client)
    await save_cursor(conn, "main", await head_cursor(conn))
    events = [event for _, event in await read_after(conn, Cursor(), limit=100)]
    return total, behind, events


def _assert_all_behind(behind: Samples, total: int) -> None:
    """Every event is the relay's backlog and each projection's lag; none parked."""
    assert sample(behind, "ledger_relay_backlog_events") == total
    assert sample(behind, "ledger_relay_backlog_seconds") > 0
    for projection in ("balances", "statements"):
        lag = "ledger_projection_lag_events"
        assert sample(behind, lag, projection=projection) == total
        assert (
            sample(behind, "ledger_projection_lag_seconds", projection=projection) > 0
        )
        parked = "ledger_projection_parked_events"
        assert sample(behind, parked, projection=projection) == 0


def _assert_balances_caught_up(
    after: Samples, total: int, ready_behind: dict[str, Any]
) -> None:
    """No backlog; balances has no lag, statements all of it, and /readyz shows it."""
    assert sample(after, "ledger_relay_backlog_events") == 0
    assert sample(after, "ledger_relay_backlog_seconds") == 0
    assert sample(after, "ledger_projection_lag_events", projection="balances") == 0
    assert sample(after, "ledger_projection_lag_seconds", projection="balances") == 0
    assert (
        sample(after, "ledger_projection_lag_events", projection="statements") == total
    )
    # /readyz reads the largest lag from the same module: statements was behind.
    assert ready_behind["lag_s"] > 0
    assert ready_behind["parked_events"] == 0


def _assert_every_projection_caught_up(
    caught_up: Samples, ready_caught_up: dict[str, Any]
) -> None:
    for projection in ("balances", "statements"):
        lag = "ledger_projection_lag_events"
        assert sample(caught_up, lag, projection=projection) == 0
        assert (
            sample(caught_up, "ledger_projection_lag_seconds", projection=projection)
            == 0
        )
    assert ready_caught_up["lag_s"] == 0


async def test_relay_backlog_and_projection_lag_are_read_at_scrape(
    quiet_environment: Environment,
) -> None:
    """Proves the backlog and lag gauges, by scraping a database where nothing
    publishes or projects (every event is backlog and lag), then moving the relay's
    cursor to the head (backlog 0), applying every event to one projection (its lag
    0, the other's unchanged, /readyz's lag above 0), then to the other (every lag
    0, /readyz's too). The gauges are read at every scrape here
    (LEDGER_METRICS_BACKLOG_INTERVAL_S=0); tests/security/test_edge_metrics.py proves
    the interval."""
    settings = msgspec.structs.replace(
        quiet_environment.settings, metrics_backlog_interval_s=0.0
    )
    business = await provision_business(settings, "Lagging")
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        async with http_client(settings) as client, pool.acquire() as conn:
            total, behind, events = await _three_clients_unpublished(
                client, conn, business
            )
            assert len(events) == total
            await apply_batch(pool, balances, events)
            after = await scrape(client)
            ready_behind = await (await client.get("/readyz")).json()
            await apply_batch(pool, statements, events)
            caught_up = await scrape(client)
            ready_caught_up = await (await client.get("/readyz")).json()
    finally:
        await pool.close()

    assert total == 4  # the business's default category, then 3 clients
    _assert_all_behind(behind, total)
    _assert_balances_caught_up(after, total, ready_behind)
    _assert_every_projection_caught_up(caught_up, ready_caught_up)


async def test_a_worker_serves_its_counters_beside_its_probes(
    service: TestClient, environment: Environment, business: dict[str, Any]
) -> None:
    """Proves a worker's /metrics on LEDGER_HEALTH_PORT, by creating a client through
    the session's service (whose relay and projectors run in this process) and
    finding the relay's and each projector's counters moved."""
    settings = msgspec.structs.replace(environment.settings, health_port=free_port())
    url = f"http://127.0.0.1:{settings.health_port}/metrics"
    async with worker_health.serving(settings), aiohttp.ClientSession() as http:

        async def worker_samples() -> Samples:
            async with http.get(url) as response:
                assert response.status == 200
                return parse(await response.text())

        before = await worker_samples()
        created = await service.post(
            "/api/v3/clients",
            json={"business_name": "Published"},
            headers=business["headers"],
        )
        assert created.status == 201  # so the relay published and both applied it
        after = await worker_samples()

    published = "ledger_relay_published_events_total"
    assert sample(after, published) >= sample(before, published) + 1
    count = "ledger_relay_publish_duration_seconds_count"
    assert sample(after, count) >= sample(before, count) + 1
    for projection in ("balances", "statements"):
        applied = "ledger_projection_applied_events_total"
        was = before.get((applied, frozenset({("projection", projection)})), 0)
        assert sample(after, applied, projection=projection) >= was + 1


async def test_each_partition_shows_its_own_lag(servers: tuple[str, str]) -> None:
    """With two partitions and nothing running, balances' partition 0 is moved to
    the head and partition 1 to the business's first event: the gauges say 0
    positions and 0 s for partition 0, and for partition 1 exactly the positions
    between its checkpoint and the head, and an age above 0; statements, with no
    partition rows yet, has no partition samples."""
    env = await create_environment(*servers, tag="plag", partitions=2)
    try:
        settings = msgspec.structs.replace(env.settings, metrics_backlog_interval_s=0.0)
        business = await provision_business(settings, "Partitioned")
        pool = await create_pool(settings.database_url, max_size=2)
        try:
            async with http_client(settings) as client, pool.acquire() as conn:
                await _three_clients_unpublished(client, conn, business)
                first, head = await conn.fetchrow(
                    "SELECT min(position), max(position) FROM events"
                )
                progress = PartitionProgress(2, {0: head, 1: first})
                await record_partitions(conn, "balances", progress)
                samples = await scrape(client)
        finally:
            await pool.close()
    finally:
        await drop_environment(env)
    positions = family(samples, "ledger_projection_partition_lag_positions")
    seconds = family(samples, "ledger_projection_partition_lag_seconds")
    assert positions == {
        frozenset({("projection", "balances"), ("partition", "0")}): 0,
        frozenset({("projection", "balances"), ("partition", "1")}): head - first,
    }
    zero = frozenset({("projection", "balances"), ("partition", "0")})
    one = frozenset({("projection", "balances"), ("partition", "1")})
    assert seconds[zero] == 0 and seconds[one] > 0 and set(seconds) == {zero, one}
    assert head - first == 3
