"""Bench: the aged receivables report of a business with 100,000 clients and
1,000,000 postings (issue 14: answered in under 2 s).

Starts the real service as `make run` does, imports `--clients` clients through the
real import route (each with its opening debit), then adds `--postings` lines in all
to the statements read model directly, in SQL: debits and credits spread over the
last 400 days, one in a hundred reversed. (A million postings through the API would
take this machine ten minutes; the report reads only the read models, so how the
rows got there does not change its work.) Then it GETs the report through the real
HTTP API, several times each way, and prints the latency of each, the answer's size,
the query alone, and its plan.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg

from services.cli.businesses import provision_business
from services.query_api import aging_report
from tests.bench.figures import percentile
from tests.bench.folds import populate
from tests.bench.service_process import (
    DEFAULT_AMQP,
    DEFAULT_POSTGRES,
    running_service,
    wait_ready,
)
from tests.support.environment import create_environment, drop_environment, free_port

ROUNDS = 5
# Ids far above the import's, so the added lines never take one of theirs.
ADDED_ID_BASE = 10**12
_ADD_LINES = """
INSERT INTO rm_transactions (transaction_id, business_id, client_id, entry_type,
    amount_minor, date, description, reference, created_at, position)
SELECT $3::bigint + row_number() OVER (), c.business_id, c.client_id,
       CASE WHEN random() < 0.3 THEN 'credit' ELSE 'debit' END,
       1 + (random() * 250000)::bigint, current_date - (random() * 400)::integer,
       '', '', now(), 0
FROM rm_clients c, generate_series(1, $2::integer) AS g
WHERE c.business_id = $1
"""
# One line in a hundred is reversed a few days later (never after today).
_REVERSE = """
WITH reversed AS (
    UPDATE rm_transactions SET reversed = true
    WHERE business_id = $1 AND transaction_id > $2 AND transaction_id % 100 = 0
    RETURNING *
)
INSERT INTO rm_transactions (transaction_id, business_id, client_id, entry_type,
    amount_minor, date, description, reference, created_at, position, reversal_of)
SELECT transaction_id + $2, business_id, client_id,
       CASE entry_type WHEN 'debit' THEN 'credit' ELSE 'debit' END, amount_minor,
       least(date + 5, current_date), '', '', now(), 0, transaction_id
FROM reversed
"""
QUERIES = {
    "default (today, no terms)": "",
    "terms_days=30": "?terms_days=30",
    "as_of 90 days ago": "?as_of={past}",
    "one category": "?category_id={category}",
}


async def add_lines(admin_url: str, business_id: int, clients: int, total: int) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        per_client = max(1, (total - clients) // clients)
        started = time.perf_counter()
        await conn.execute(_ADD_LINES, business_id, per_client, ADDED_ID_BASE)
        await conn.execute(_REVERSE, business_id, ADDED_ID_BASE)
        await conn.execute("VACUUM ANALYZE rm_transactions")
        await conn.execute("VACUUM ANALYZE rm_clients")
        lines = await conn.fetchval(
            "SELECT count(*) FROM rm_transactions WHERE business_id = $1", business_id
        )
        print(
            f"lines in the statements model: {lines:,}"
            f" (added in {time.perf_counter() - started:.1f} s)"
        )
    finally:
        await conn.close()


async def time_report(
    http: aiohttp.ClientSession, headers: dict[str, str], path: str
) -> tuple[list[float], int, int]:
    """Latencies of ROUNDS GETs, the answer's bytes and its client count."""
    latencies, size, count = [], 0, 0
    for _ in range(ROUNDS):
        started = time.perf_counter()
        async with http.get(path, headers=headers) as response:
            raw = await response.read()
            assert response.status == 200, raw[:500]
        latencies.append(time.perf_counter() - started)
        size = len(raw)
        count = raw.count(b'"business_name"')
    return latencies, size, count


def _line(name: str, latencies: list[float], size: int, count: int) -> str:
    return (
        f"{name:<28} p50 {percentile(latencies, 0.5) * 1000:7.0f} ms,"
        f" max {max(latencies) * 1000:7.0f} ms; {count:,} clients, {size / 1e6:.1f} MB"
    )


async def measure(
    http: aiohttp.ClientSession, headers: dict[str, str], category: int
) -> None:
    past = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 90 * 86400))
    for name, query in QUERIES.items():
        path = "/api/v3/clients/aging" + query.format(past=past, category=category)
        print(_line(name, *await time_report(http, headers, path)))
    started = time.perf_counter()
    async with http.get("/api/v3/clients/aging.xlsx", headers=headers) as response:
        raw = await response.read()
        assert response.status == 200
    elapsed = time.perf_counter() - started
    name = "workbook (aging.xlsx)"
    print(f"{name:<28} {elapsed * 1000:7.0f} ms, {len(raw) / 1e6:.1f} MB")


async def explain(admin_url: str, business_id: int) -> None:
    """The default report's query alone, EXPLAIN ANALYZE'd."""
    conn = await asyncpg.connect(admin_url)
    try:
        async with conn.transaction():  # with the report's own settings
            await conn.execute(aging_report.SETTINGS, "64MB")
            plan = await conn.fetch(
                "EXPLAIN ANALYZE " + aging_report.AGING,
                business_id,
                dt.datetime.now(dt.UTC).date(),
                0,
                None,
            )
        print("the default report's query, EXPLAIN ANALYZE:")
        for row in plan:
            print("   ", row[0])
    finally:
        await conn.close()


async def second_category(
    http: aiohttp.ClientSession, headers: dict[str, str], admin_url: str
) -> int:
    """A category made through the API, given every tenth client (in the read model
    directly, as the added lines are)."""
    body = {"name": "Tenth", "description": "every tenth client"}
    async with http.post(
        "/api/v3/clients/category", json=body, headers=headers
    ) as response:
        category: int = (await response.json())["id"]
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(
            "UPDATE rm_clients SET category_id = $1 WHERE client_id % 10 = 0", category
        )
    finally:
        await conn.close()
    return category


async def bench(args: argparse.Namespace) -> int:
    env = await create_environment(args.postgres, args.amqp, tag="bench")
    try:
        with tempfile.TemporaryDirectory(prefix="ledger-bench-") as directory:
            log_path = Path(directory) / "ledger-run.log"
            port = free_port()
            async with running_service(env, port, log_path) as process:
                timeout = aiohttp.ClientTimeout(total=1800)
                base = f"http://127.0.0.1:{port}"
                async with aiohttp.ClientSession(base, timeout=timeout) as http:
                    await wait_ready(http, process, log_path)
                    business = await provision_business(env.settings, "Aging")
                    headers = {"Authorization": f"Bearer {business['api_key']}"}
                    started = time.perf_counter()
                    await populate(http, headers, args.clients)
                    print(
                        f"{args.clients:,} clients imported and visible in"
                        f" {time.perf_counter() - started:.1f} s"
                    )
                    business_id = business["business_id"]
                    assert isinstance(business_id, int)
                    await add_lines(
                        env.admin_url, business_id, args.clients, args.postings
                    )
                    category = await second_category(http, headers, env.admin_url)
                    await measure(http, headers, category)
                    await explain(env.admin_url, business_id)
    finally:
        await drop_environment(env)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.aging")
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--postings", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="superuser URL")
    parser.add_argument("--amqp", default=DEFAULT_AMQP)
    return asyncio.run(bench(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
