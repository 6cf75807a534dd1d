"""`make bench`: postings per second over HTTP against a group-commit-free baseline.

Starts the real service the way `make run` does (`python -m services.cli.main run`)
against a throwaway database and uniquely named exchange and queues, creates a
business and 200 clients, then for each concurrency (1, 16, 64):

1. posts `{"type": "debit", "amount": "1.00"}` to random clients for a fixed time on
   the default path (read-your-writes on, durable commits, PostgreSQL's defaults) and
   records postings/s with p50/p99 latency;
2. measures a baseline on the same machine and database: one-row-per-transaction
   INSERTs from asyncpg at the same concurrency for the same time, into a copy of the
   events table (same columns, constraints and indexes) with the payload, metadata and
   hash of a real posting event; prints rows/s and `ratio` = postings/s / rows/s.

Projection lag (commit to visible in the query API) is probed at idle and during the
16 and 64 phases by one extra task: it posts with `Prefer: respond-async` (the service
answers 202 right after its commit, with X-Ledger-Position), then GETs the client with
`X-Ledger-Min-Position` (the query route waits server-side until the read models have
the position). The lag is the time from the 202 to that GET's 200, so it includes one
GET round trip; the idle round trip of a plain GET is printed for reference.

At the end the sum of all balances from the summary route must equal the number of
committed postings x 1.00 (the process exits 1 otherwise). The service is stopped with
SIGINT and the environment dropped even on failure.

The pieces: the service process (service_process.py), the counting HTTP client
(counting_client.py), the postings and the lag probe (posting_workloads.py), the
baseline (baseline.py), CPU use (cpu_use.py) and the figures (figures.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg

from services.cli.businesses import provision_business
from shared.config import Settings
from tests.bench.baseline import BASELINE_TABLE, run_baseline
from tests.bench.counting_client import Ledger
from tests.bench.cpu_use import Watch, cpu_line, others
from tests.bench.figures import Phase, lag_text, ms, percentile
from tests.bench.posting_workloads import probe_lag, run_postings
from tests.bench.service_process import (
    DEFAULT_AMQP,
    DEFAULT_POSTGRES,
    running_service,
    tail,
    tuning,
    wait_ready,
)
from tests.support.environment import (
    Environment,
    create_environment,
    drop_environment,
    free_port,
)

CLIENTS = 200
CONCURRENCIES = (1, 16, 64)
LAG_PROBED_AT = (16, 64)
IDLE_PROBE_S = 2.0
AMOUNT = Decimal("1.00")
REQUEST_TIMEOUT_S = 30.0
NOISY_CORES = 0.2  # other processes' CPU above which the figures are flagged


async def bench(args: argparse.Namespace) -> int:
    env = await create_environment(
        args.postgres,
        args.amqp,
        tag="bench",
        checkpoint_interval_s=10.0,
        # The service's own read-your-writes bound, not the tests' longer one.
        read_your_writes_timeout_s=Settings().read_your_writes_timeout_s,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="ledger-bench-") as directory:
            log_path = Path(directory) / "ledger-run.log"
            port = free_port()
            async with running_service(env, port, log_path) as process:
                try:
                    return await measure(args, env, port, process, log_path)
                except BaseException:
                    print(
                        f"--- service log (tail) ---\n{tail(log_path)}", file=sys.stderr
                    )
                    raise
    finally:
        await drop_environment(env)


GROUP_COMMIT = """
SELECT count(*) AS events, count(DISTINCT transaction_id) AS commits
FROM events WHERE position > $1 AND position <= $2
"""
SERVER = """
SELECT current_setting('server_version') || ' ('
    || string_agg(name || '=' || setting, ', ' ORDER BY name) || ')'
FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync', 'wal_sync_method')
"""


async def print_setting(args: argparse.Namespace, admin: asyncpg.Pool) -> None:
    """The machine, the service settings passed on, the server and the phases."""
    print(f"cores {os.cpu_count()} (os.cpu_count)")
    if tuning():
        print(f"service settings: {tuning()}")
    print(f"PostgreSQL {await admin.fetchval(SERVER)}")
    print(
        f"{args.seconds:g} s per phase, {CLIENTS} clients, default path "
        "(read-your-writes on, durable commits, PostgreSQL defaults)"
    )


async def run_concurrency(
    concurrency: int,
    seconds: float,
    env: Environment,
    admin: asyncpg.Pool,
    ledger: Ledger,
    clients: Sequence[int],
    watch: Watch,
) -> tuple[Phase, Phase]:
    """One concurrency's postings (with the projection lag probed where asked) and
    baseline, each printed as it ends."""
    print(f"concurrency {concurrency}")
    lags: list[float] | None = [] if concurrency in LAG_PROBED_AT else None
    first = await admin.fetchval("SELECT max(position) FROM events")
    posted = await run_postings(ledger, clients, concurrency, seconds, watch, lags)
    grouped = await admin.fetchrow(GROUP_COMMIT, first, ledger.position_max)
    print(f"  postings  {posted.figures()}")
    print(f"    cpu (cores): {cpu_line(posted)}")
    print(
        f"    group commit: {grouped['events']} events in "
        f"{grouped['commits']} transactions "
        f"({grouped['events'] / max(1, grouped['commits']):.1f} per commit)"
    )
    if lags is not None:
        print(f"  projection {lag_text(lags)} (one extra probe task)")
    baseline = await run_baseline(env.admin_url, concurrency, seconds, watch)
    print(f"  baseline  {baseline.figures()}")
    print(f"    cpu (cores): {cpu_line(baseline)}")
    return posted, baseline


def print_ratios(ratios: dict[int, float], phases: list[Phase]) -> None:
    """Every concurrency's ratio, the highest concurrency's, and a warning when other
    work used more than NOISY_CORES during a phase."""
    print("ratios: " + ", ".join(f"c={c} {r:.3f}" for c, r in ratios.items()))
    print(f"ratio {ratios[max(CONCURRENCIES)]:.3f}")
    noise = max(others(phase) for phase in phases)
    if noise > NOISY_CORES:
        print(
            f"WARNING: other processes used up to {noise:.2f} cores during a phase;"
            " the machine was not quiet, so these figures understate both sides"
        )


async def measure(
    args: argparse.Namespace,
    env: Environment,
    port: int,
    process: subprocess.Popen[bytes],
    log_path: Path,
) -> int:
    watch = Watch(supervisor=process.pid, database=env.admin_url.rsplit("/", 1)[-1])
    connector = aiohttp.TCPConnector(limit=max(CONCURRENCIES) + 8)
    async with (
        asyncpg.create_pool(env.admin_url, min_size=1, max_size=2) as admin,
        aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{port}",
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        ) as http,
    ):
        await admin.execute(BASELINE_TABLE)
        await print_setting(args, admin)
        await wait_ready(http, process, log_path)
        business = await provision_business(env.settings, "Bench business")
        ledger = Ledger(http, str(business["api_key"]))
        clients = await create_clients(ledger)
        await idle_lag(ledger, clients)

        ratios: dict[int, float] = {}
        phases: list[Phase] = []
        for concurrency in CONCURRENCIES:
            posted, baseline = await run_concurrency(
                concurrency, args.seconds, env, admin, ledger, clients, watch
            )
            ratios[concurrency] = posted.rate / baseline.rate if baseline.rate else 0.0
            print(f"  ratio {ratios[concurrency]:.3f}")
            phases += [posted, baseline]
        print_ratios(ratios, phases)
        return await check_exactness(ledger)


async def idle_lag(ledger: Ledger, clients: Sequence[int]) -> None:
    lags: list[float] = []
    round_trips: list[float] = []
    await probe_lag(
        ledger, clients, time.perf_counter() + IDLE_PROBE_S, lags, round_trips
    )
    print(
        "projection lag probe: 202 (Prefer: respond-async, right after commit) -> "
        "GET /clients/{id} with X-Ledger-Min-Position answers 200; includes one "
        f"GET round trip (idle plain GET p50 {ms(percentile(round_trips, 0.5))} ms)"
    )
    print(f"  idle: projection {lag_text(lags)}")


async def create_clients(ledger: Ledger) -> list[int]:
    started = time.perf_counter()
    numbers = iter(range(CLIENTS))
    clients: list[int] = []

    async def creator() -> None:
        for number in numbers:
            clients.append(await ledger.create_client(number))

    await asyncio.gather(*(creator() for _ in range(16)))
    print(f"created {len(clients)} clients in {time.perf_counter() - started:.1f} s")
    return sorted(clients)


async def check_exactness(ledger: Ledger) -> int:
    summary = await ledger.summary()
    total = Decimal(summary["total_balance"])
    expected = ledger.committed * AMOUNT
    if ledger.errors:
        print(f"errors (uncertain whether committed): {ledger.errors}")
    verdict = (
        "exact"
        if total == expected and summary["customer_count"] == CLIENTS
        else "WRONG"
    )
    print(
        f"exactness: {verdict}: total_balance {total} vs {ledger.committed} committed "
        f"postings x {AMOUNT} = {expected} ({ledger.accepted} answered 202); "
        f"customer_count {summary['customer_count']}"
    )
    return 0 if verdict == "exact" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.postings")
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="superuser URL")
    parser.add_argument("--amqp", default=DEFAULT_AMQP)
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
