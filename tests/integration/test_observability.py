"""/metrics of the API, through the real HTTP app on the real PostgreSQL and RabbitMQ:
exact counts per route pattern, the latency histogram's buckets, events appended and
an import's rows, each on an app whose counters start at zero."""

from __future__ import annotations

import io
import json
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from tests.integration.metrics_samples import DEFAULT_BUCKETS, family, sample, scrape
from tests.support.workbooks import HEADER, form, openpyxl_file


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
