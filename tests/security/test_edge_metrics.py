"""/metrics is public: scrapes must not each cost the database a backlog count.

Through the real HTTP app (in-process, on a socket) and a PostgreSQL database of its
own, where a row added to `projection_parked` between scrapes shows whether a scrape
read the database or served the figures it already had.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.environment import (
    Environment,
    create_environment,
    drop_environment,
)
from tests.support.service import http_client

DEADLINE_S = 30.0
POLL_S = 0.05
READS = "ledger_metrics_backlog_reads_total"
PARKED = "ledger_projection_parked_events"


@pytest.fixture
async def quiet(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    """A database of its own, where nothing parks an event but the test."""
    env = await create_environment(*servers, tag="scrape")
    yield env
    await drop_environment(env)


async def _scrape(client: TestClient) -> dict[str, float]:
    """The unlabelled samples, and the parked gauge of `balances`, by name."""
    response = await client.get("/metrics")
    assert response.status == 200
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            if not sample.labels or sample.labels == {"projection": "balances"}:
                samples[sample.name] = sample.value
    return samples


async def _park_one(env: Environment) -> None:
    conn = await asyncpg.connect(env.admin_url)
    try:
        await conn.execute(
            "INSERT INTO projection_parked"
            " (projection, event_id, stream_id, version, position, error)"
            " VALUES ('balances', $1, 'client-0', 1, 1, 'parked by the test')",
            uuid.uuid4(),
        )
    finally:
        await conn.close()


async def test_scrapes_within_the_interval_read_the_database_once(
    quiet: Environment,
) -> None:
    """Proves the gauges are cached: with a one-hour interval, five scrapes make one
    database read (the read counter stays 1) and a row parked after the first scrape
    is not shown by the next four."""
    settings = msgspec.structs.replace(
        quiet.settings, metrics_backlog_interval_s=3600.0
    )
    async with http_client(settings) as client:
        first = await _scrape(client)
        await _park_one(quiet)
        later = [await _scrape(client) for _ in range(4)]
    assert (first[READS], first[PARKED]) == (1.0, 0.0)
    assert [(scrape[READS], scrape[PARKED]) for scrape in later] == [(1.0, 0.0)] * 4


async def test_a_scrape_after_the_interval_reads_the_database_again(
    quiet: Environment,
) -> None:
    """Proves the cache expires: with a 0.5 s interval, scraping until the parked row
    shows takes exactly one more database read, and then the figure is the row's."""
    settings = msgspec.structs.replace(quiet.settings, metrics_backlog_interval_s=0.5)
    async with http_client(settings) as client:
        first = await _scrape(client)
        await _park_one(quiet)
        deadline = time.monotonic() + DEADLINE_S
        while (scrape := await _scrape(client))[READS] == 1.0:
            assert time.monotonic() < deadline, "the gauges were never read again"
            await asyncio.sleep(POLL_S)
    assert (first[READS], first[PARKED]) == (1.0, 0.0)
    assert (scrape[READS], scrape[PARKED]) == (2.0, 1.0)


async def test_methods_other_than_the_usual_are_counted_as_other(
    quiet: Environment,
) -> None:
    """Proves a client cannot spread the request counters over many label sets with
    methods: the HTTP parser refuses invented ones (400 before any middleware), and
    the other methods it knows (WebDAV's, PURGE, ...) are counted under `OTHER`, one
    each, with no sample naming them."""
    sent = ["PROPFIND", "MKCOL", "LOCK", "UNLOCK", "PURGE", "REPORT", "MOVE", "COPY"]
    async with http_client(quiet.settings) as client:
        for method in sent:
            async with client.request(method, "/api/v3/clients"):
                pass
        async with client.request("INVENTED", "/api/v3/clients") as refused:
            assert refused.status == 400
        response = await client.get("/metrics")
        text = await response.text()
    methods: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ledger_http_requests_total":
                method = sample.labels["method"]
                methods[method] = methods.get(method, 0.0) + sample.value
    assert not [method for method in sent if f'method="{method}"' in text]
    assert methods["OTHER"] == float(len(sent))
