"""/metrics and the request log, through the real HTTP app on the real PostgreSQL and
RabbitMQ: exact counts per route pattern, the latency histogram's buckets, events
appended, the relay's backlog and each projection's lag, one JSON log line per
request, and the X-Request-Id that ties a request to its events."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from projections.balances.projector import projection as balances
from projections.runner import apply_batch
from projections.statements.projector import projection as statements
from services.cli import worker_health
from services.cli.businesses import provision_business
from services.cli.logs import JsonFormatter
from shared.store.event_store import Cursor, read_after, save_cursor
from shared.store.postgres import create_pool
from tests.integration.scenarios import (
    head_cursor,
    horizon_held_until_checked,
    wait_until_readable,
)
from tests.support.environment import (
    Environment,
    create_environment,
    drop_environment,
    free_port,
)
from tests.support.service import http_client
from tests.support.workbooks import HEADER, form, openpyxl_file

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
DEFAULT_BUCKETS = [
    "0.005",
    "0.01",
    "0.025",
    "0.05",
    "0.075",
    "0.1",
    "0.25",
    "0.5",
    "0.75",
    "1.0",
    "2.5",
    "5.0",
    "7.5",
    "10.0",
    "+Inf",
]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and label set."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def family(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {
        labels: value for (found, labels), value in samples.items() if found == name
    }


async def scrape(client: TestClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    return parse(await response.text())


@pytest.fixture
async def fresh_app(
    service: TestClient, environment: Environment
) -> AsyncIterator[TestClient]:
    """An API app of its own (so its counters start at zero), beside the session's
    service, whose relay and projectors keep running."""
    async with http_client(environment.settings) as client:
        yield client


@pytest.fixture
def request_log() -> Iterator[io.StringIO]:
    """What the `ledger.request` logger writes, through the JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("ledger.request")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_requests_are_counted_and_timed_by_route_pattern(
    fresh_app: TestClient, business: dict[str, Any]
) -> None:
    """Proves the request counter and latency histogram use the route's pattern, with
    exact counts, by making 3 creates, 2 reads of one client, a read of an unknown id
    (404 on the same pattern), a read of `/clients/abc` (ids are digits: no route, so
    404 `unmatched`) and a request to no route (401, `unmatched`) on an app whose
    counters start at zero."""
    headers = business["headers"]
    for number in range(3):
        created = await fresh_app.post(
            "/api/v3/clients", json={"business_name": f"M{number}"}, headers=headers
        )
        assert created.status == 201
    client_id = (await created.json())["id"]
    for _ in range(2):
        read = await fresh_app.get(f"/api/v3/clients/{client_id}", headers=headers)
        assert read.status == 200
    unknown = await fresh_app.get("/api/v3/clients/999999999", headers=headers)
    assert unknown.status == 404
    assert (await fresh_app.get("/api/v3/clients/abc", headers=headers)).status == 404
    assert (await fresh_app.get("/no/such/route")).status == 401

    samples = await scrape(fresh_app)

    requests = "ledger_http_requests_total"
    one = "/api/v3/clients/{id}"
    assert (
        sample(samples, requests, method="POST", route="/api/v3/clients", status="201")
        == 3
    )
    assert sample(samples, requests, method="GET", route=one, status="200") == 2
    assert sample(samples, requests, method="GET", route=one, status="404") == 1
    assert sample(samples, requests, method="GET", route="unmatched", status="401") == 1
    assert sample(samples, requests, method="GET", route="unmatched", status="404") == 1
    # The raw paths never become labels.
    assert not [labels for labels in family(samples, requests) if "abc" in str(labels)]
    buckets = {
        dict(labels)["le"]: value
        for labels, value in family(
            samples, "ledger_http_request_duration_seconds_bucket"
        ).items()
        if dict(labels)["route"] == "/api/v3/clients"
    }
    assert list(buckets) == DEFAULT_BUCKETS
    assert buckets["+Inf"] == 3
    duration = "ledger_http_request_duration_seconds_count"
    assert sample(samples, duration, method="POST", route="/api/v3/clients") == 3


async def test_events_appended_are_counted_by_type(
    fresh_app: TestClient, business: dict[str, Any]
) -> None:
    """Proves the events-appended counter moves by exactly the events committed, by
    creating a client, posting two transactions and one refused debit (a deposit
    below zero, 422, no event), and reading the counter by type."""
    headers = business["headers"]
    created = await fresh_app.post(
        "/api/v3/clients", json={"business_name": "Counted"}, headers=headers
    )
    client_id = (await created.json())["id"]
    for amount in ("10.00", "2.50"):
        posted = await fresh_app.post(
            f"/api/v3/clients/{client_id}/transactions",
            json={"type": "debit", "amount": amount},
            headers=headers,
        )
        assert posted.status == 201
    refused = await fresh_app.post(
        f"/api/v3/clients/{client_id}/deposits",
        json={"type": "credit", "amount": "1.00"},
        headers=headers,
    )
    assert refused.status == 422

    samples = await scrape(fresh_app)

    assert family(samples, "ledger_events_appended_total") == {
        frozenset({("type", "client.created")}): 1,
        frozenset({("type", "transaction.posted")}): 2,
    }


async def test_a_request_is_one_json_log_line_with_its_ids(
    fresh_app: TestClient,
    business: dict[str, Any],
    request_log: io.StringIO,
    pool: asyncpg.Pool,
) -> None:
    """Proves the request log and X-Request-Id passthrough, by creating a client with
    X-Request-Id: the response echoes it, the one log line (JSON) holds method,
    route, status, duration, request id, business id and correlation id, and the
    client's event carries the request id as its correlation id."""
    request_id = f"req-{uuid.uuid4()}"
    response = await fresh_app.post(
        "/api/v3/clients",
        json={"business_name": "Logged"},
        headers={**business["headers"], "X-Request-Id": request_id},
    )
    assert response.status == 201
    assert response.headers["X-Request-Id"] == request_id
    client_id = (await response.json())["id"]

    lines = [json.loads(line) for line in request_log.getvalue().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    duration_ms = line.pop("duration_ms")
    assert isinstance(duration_ms, float) and duration_ms > 0
    assert isinstance(line.pop("time"), str)
    assert line == {
        "level": "INFO",
        "logger": "ledger.request",
        "message": "POST /api/v3/clients 201",
        "event": "http.request",
        "method": "POST",
        "route": "/api/v3/clients",
        "status": 201,
        "request_id": request_id,
        "business_id": business["business_id"],
        "correlation_id": request_id,
    }
    correlation = await pool.fetchval(
        "SELECT metadata->>'correlation_id' FROM events WHERE stream_id = $1",
        f"client-{client_id}",
    )
    assert correlation == request_id


async def test_a_request_id_that_cannot_be_echoed_is_replaced(
    fresh_app: TestClient, business: dict[str, Any], request_log: io.StringIO
) -> None:
    """Proves an X-Request-Id over 255 characters, or none, gets a fresh UUID that is
    echoed and logged, and that X-Correlation-Id still names the correlation id."""
    too_long = "r" * 256
    replaced = await fresh_app.get("/healthz", headers={"X-Request-Id": too_long})
    fresh = await fresh_app.get("/healthz")
    correlated = await fresh_app.post(
        "/api/v3/clients",
        json={"business_name": "Correlated"},
        headers={
            **business["headers"],
            "X-Request-Id": "req-a",
            "X-Correlation-Id": "corr-b",
        },
    )

    ids = [response.headers["X-Request-Id"] for response in (replaced, fresh)]
    for request_id in ids:
        assert str(uuid.UUID(request_id)) == request_id
    assert ids[0] != ids[1]
    lines = [json.loads(line) for line in request_log.getvalue().splitlines()]
    assert [(line["route"], line["request_id"]) for line in lines] == [
        ("/healthz", ids[0]),
        ("/healthz", ids[1]),
        ("/api/v3/clients", "req-a"),
    ]
    assert lines[0]["business_id"] is None
    assert lines[2]["correlation_id"] == "corr-b"
    assert correlated.headers["X-Request-Id"] == "req-a"


@pytest.fixture
async def quiet_environment(
    servers: tuple[str, str],
) -> AsyncIterator[Environment]:
    """A database of its own where no relay or projector runs, so that the backlog
    and lag are exactly what the test makes them."""
    env = await create_environment(*servers, tag="lag")
    yield env
    await drop_environment(env)


async def test_relay_backlog_and_projection_lag_are_read_at_scrape(
    quiet_environment: Environment,
) -> None:
    """Proves the backlog and lag gauges, by scraping a database where nothing
    publishes or projects (every event is backlog and lag), then moving the relay's
    cursor to the head (backlog 0), applying every event to one projection (its lag
    0, the other's unchanged, /readyz's lag above 0), then to the other (every lag
    0, /readyz's too). The gauges are read at every scrape here
    (LEDGER_METRICS_BACKLOG_INTERVAL_S=0); tests/security/test_edge_metrics.py proves
    the interval. The events are read once the server's xmin horizon has passed
    them: a write transaction held open meanwhile (any session's may be) hides them
    from read_after until the test has waited for it."""
    settings = msgspec.structs.replace(
        quiet_environment.settings, metrics_backlog_interval_s=0.0
    )
    business = await provision_business(settings, "Lagging")
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        async with http_client(settings) as client, pool.acquire() as conn:
            admin_url = quiet_environment.admin_url
            async with horizon_held_until_checked(admin_url, conn.get_server_pid()):
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
                await wait_until_readable(conn)
                await save_cursor(conn, "main", await head_cursor(conn))
                events = [
                    event for _, event in await read_after(conn, Cursor(), limit=100)
                ]
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
    for projection in ("balances", "statements"):
        lag = "ledger_projection_lag_events"
        assert sample(caught_up, lag, projection=projection) == 0
        assert (
            sample(caught_up, "ledger_projection_lag_seconds", projection=projection)
            == 0
        )
    assert ready_caught_up["lag_s"] == 0


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


async def test_an_import_counts_its_rows_and_events(
    fresh_app: TestClient,
    business: dict[str, Any],
    request_log: io.StringIO,
    pool: asyncpg.Pool,
) -> None:
    """Proves the import counters, by importing 3 rows (two with an unpaid amount):
    3 rows, 1 clients.imported, 3 client.created and 2 transaction.posted events
    counted, and the request's log line carries the import id as correlation id."""
    raw = openpyxl_file(
        [
            HEADER,
            ["Ama", "0200000001", "", "", 120],
            ["Kofi", "", "", "", None],
            ["Esi", "", "", "", "7.50"],
        ]
    )
    response = await fresh_app.post(
        "/api/clients-import", data=form(raw), headers=business["headers"]
    )
    assert response.status == 201, await response.text()
    import_id = (await response.json())["import_id"]

    samples = await scrape(fresh_app)

    assert sample(samples, "ledger_import_rows_total") == 3
    assert family(samples, "ledger_events_appended_total") == {
        frozenset({("type", "clients.imported")}): 1,
        frozenset({("type", "client.created")}): 3,
        frozenset({("type", "transaction.posted")}): 2,
    }
    stored = await pool.fetchval(
        "SELECT count(*) FROM events WHERE metadata->>'correlation_id' = $1", import_id
    )
    assert stored == 6
    lines = [json.loads(line) for line in request_log.getvalue().splitlines()]
    line = next(line for line in lines if line["route"] == "/api/clients-import")
    assert (line["status"], line["correlation_id"]) == (201, import_id)
