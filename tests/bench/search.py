"""Bench: `GET /api/v3/clients?search=` on 100,000 clients of one business, through
the real HTTP API of `ledger run` (a figure to read, never a timed assertion).

Starts the service on a throwaway database (tests.bench.service_process), loads the
clients through the real import route (tests.bench.search_book: varied names with
accents, mobile numbers in mixed formats, e-mails, five categories), then sends the
20 searches of search_book.searches with per_page=50, one at a time, for several
rounds after one round not counted (the statements' first plans), and prints p50 and
p99 per search, over all of them and over those an index serves (a one-character
search reads every client of the business),
with X-Total-Count. It measures twice: right after the import is visible (no
statistics yet, the GIN index's pending list full, autovacuum possibly at work),
then once autovacuum has vacuumed and analysed rm_clients (or after a VACUUM ANALYZE
when autovacuum is off or not done within a deadline, and it says so). Last,
PostgreSQL's plans of the page and count statements for four searches, run as the
API runs them.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg

from services.cli.businesses import provision_business
from services.query_api.client_list import client_list_statements
from services.query_api.client_search import indexed
from services.query_api.queries import ClientFilter
from shared.config import Settings
from tests.bench.imports import wait_done
from tests.bench.search_book import rows, searches, workbook
from tests.bench.service_process import (
    DEFAULT_AMQP,
    DEFAULT_POSTGRES,
    running_service,
    wait_ready,
)
from tests.support.environment import (
    Environment,
    create_environment,
    drop_environment,
    free_port,
)
from tests.support.workbooks import form

PER_PAGE = 50
TARGET_P99_MS = 50.0
PLANNED = (0, 11, 15, 9)  # a name, a phone, a common e-mail part, 2 letters


async def load(
    http: aiohttp.ClientSession, headers: dict[str, str], sheet: list[list[object]]
) -> str:
    """Import the sheet and wait until it is visible in the read models."""
    raw = await asyncio.to_thread(workbook, sheet)
    started = time.perf_counter()
    async with http.post(
        "/api/v3/clients/import", data=form(raw), headers=headers
    ) as response:
        answer = await response.json()
        if response.status not in (201, 202):
            raise RuntimeError(f"import answered {response.status}: {answer}")
    answered_s = time.perf_counter() - started
    done_s = await wait_done(http, headers, answer, started)
    return (
        f"loaded {len(sheet) - 1:,} clients through the import route: answered"
        f" {response.status} in {answered_s:.1f} s, visible after {done_s:.1f} s"
    )


async def categories(
    http: aiohttp.ClientSession, headers: dict[str, str]
) -> dict[str, int]:
    async with http.get("/api/v3/clients/categories", headers=headers) as response:
        return {row["name"]: row["id"] for row in await response.json()}


async def timed_search(
    http: aiohttp.ClientSession, headers: dict[str, str], query: dict[str, str]
) -> tuple[float, int]:
    """One search's seconds, and its X-Total-Count."""
    params = {**query, "per_page": str(PER_PAGE)}
    started = time.perf_counter()
    async with http.get("/api/v3/clients", params=params, headers=headers) as response:
        await response.read()
        elapsed_s = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"{query} answered {response.status}")
        return elapsed_s, int(response.headers["X-Total-Count"])


async def measure(
    http: aiohttp.ClientSession,
    headers: dict[str, str],
    queries: list[dict[str, str]],
    rounds: int,
) -> tuple[list[list[float]], list[int]]:
    """Each search's latencies over `rounds` (after one round not counted), and
    its total."""
    samples: list[list[float]] = [[] for _ in queries]
    totals = [0] * len(queries)
    for round_number in range(rounds + 1):
        for index, query in enumerate(queries):
            elapsed_s, totals[index] = await timed_search(http, headers, query)
            if round_number:
                samples[index].append(elapsed_s)
    return samples, totals


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile, in ms."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] * 1000


def report(
    title: str,
    queries: list[dict[str, str]],
    samples: list[list[float]],
    totals: list[int],
) -> str:
    lines = [f"{title} ({len(samples[0])} rounds; p99 of one search = its max):"]
    lines.append(f"  {'search':<40} {'found':>7} {'p50 ms':>7} {'p99 ms':>7}")
    for query, latencies, total in zip(queries, samples, totals, strict=True):
        shown = " ".join(f"{name}={value}" for name, value in query.items())
        lines.append(
            f"  {shown:<40} {total:>7,} {percentile(latencies, 0.5):>7.1f}"
            f" {percentile(latencies, 0.99):>7.1f}"
        )
    lines.append(_overall("overall", samples))
    served = [
        latencies
        for query, latencies in zip(queries, samples, strict=True)
        if indexed(query["search"])
    ]
    lines.append(_overall("searches an index serves", served))
    return "\n".join(lines)


def _overall(title: str, samples: list[list[float]]) -> str:
    every = [latency for latencies in samples for latency in latencies]
    p99 = percentile(every, 0.99)
    verdict = "under" if p99 < TARGET_P99_MS else "OVER"
    return (
        f"  {title} ({len(samples)} x {len(samples[0])}): p50"
        f" {percentile(every, 0.5):.1f} ms, p99 {p99:.1f} ms ({verdict} the"
        f" {TARGET_P99_MS:.0f} ms target)"
    )


async def vacuumed(env: Environment, deadline_s: float) -> str:
    """Wait (up to `deadline_s`) for autovacuum to have vacuumed and analysed
    rm_clients since the import (statistics, the GIN pending list merged); past the
    deadline, or when autovacuum is off, run VACUUM ANALYZE. Says which it was."""
    conn = await asyncpg.connect(env.admin_url)
    started = time.monotonic()
    try:
        if await conn.fetchval("SHOW autovacuum") != "on":
            await conn.execute("VACUUM (ANALYZE) rm_clients")
            return "after VACUUM ANALYZE (autovacuum is off on this server)"
        while time.monotonic() - started < deadline_s:
            done = await conn.fetchval(
                "SELECT last_autovacuum IS NOT NULL AND last_autoanalyze IS NOT NULL"
                " FROM pg_stat_user_tables WHERE relname = 'rm_clients'"
            )
            if done:
                return f"after autovacuum ({time.monotonic() - started:.0f} s later)"
            await asyncio.sleep(1.0)
        await conn.execute("VACUUM (ANALYZE) rm_clients")
        return f"after VACUUM ANALYZE (autovacuum not done in {deadline_s:.0f} s)"
    finally:
        await conn.close()


async def plans(
    env: Environment, business_id: int, queries: list[dict[str, str]]
) -> str:
    """The plans of each PLANNED search's statements (page, then count) as the API
    runs them: in a transaction that plans each execution for its own text."""
    lines = []
    conn = await asyncpg.connect(env.settings.database_url)
    try:
        for index in PLANNED:
            query = queries[index]
            category = query.get("category_id")
            where = ClientFilter(
                search=query["search"],
                category_id=None if category is None else int(category),
                limit=PER_PAGE,
            )
            statements = client_list_statements(business_id, where)
            args = statements.args
            async with conn.transaction():
                await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
                plan = await conn.fetch(
                    f"EXPLAIN ANALYZE {statements.searched_page}", *args, PER_PAGE, 0
                )
            lines.append(f"page and count of search={query['search']!r}:")
            lines += [f"  {row[0]}" for row in plan if _summarised(row[0])]
    finally:
        await conn.close()
    return "\n".join(lines)


def _summarised(line: str) -> bool:
    words = ("Scan", "Limit", "BitmapOr", "Index Cond", "Filter:", "Execution Time")
    return any(word in line for word in words)


async def bench(args: argparse.Namespace) -> int:
    env = await create_environment(
        args.postgres,
        args.amqp,
        tag="bench",
        checkpoint_interval_s=10.0,
        read_your_writes_timeout_s=Settings().read_your_writes_timeout_s,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="ledger-bench-") as directory:
            log_path = Path(directory) / "ledger-run.log"
            port = free_port()
            async with running_service(env, port, log_path) as process:
                base = f"http://127.0.0.1:{port}"
                timeout = aiohttp.ClientTimeout(total=1800)
                async with aiohttp.ClientSession(base, timeout=timeout) as http:
                    await wait_ready(http, process, log_path)
                    await run(http, env, args)
    finally:
        await drop_environment(env)
    return 0


async def run(
    http: aiohttp.ClientSession, env: Environment, args: argparse.Namespace
) -> None:
    business = await provision_business(env.settings, "Bench")
    headers = {"Authorization": f"Bearer {business['api_key']}"}
    sheet = rows(args.clients)
    print(await load(http, headers, sheet), flush=True)
    queries = searches(sheet, await categories(http, headers))
    samples, totals = await measure(http, headers, queries, args.rounds)
    title = "right after the import is visible"
    print(report(title, queries, samples, totals), flush=True)
    title = await vacuumed(env, args.autovacuum_deadline_s)
    samples, totals = await measure(http, headers, queries, args.rounds)
    print(report(title, queries, samples, totals), flush=True)
    print(await plans(env, int(business["business_id"]), queries))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.search")
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--autovacuum-deadline-s", type=float, default=300.0)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="superuser URL")
    parser.add_argument("--amqp", default=DEFAULT_AMQP)
    return asyncio.run(bench(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
