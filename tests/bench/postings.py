"""`make bench`: postings per second over HTTP against a group-commit-free baseline
and against the `eventsourcing` library's bank-account ledger.

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

Then two phases for the record at concurrency 64: every posting with a fresh
`Idempotency-Key`, and the default postings with one external subscriber queue bound
with `#` to the topic exchange (posting_phases.py).

Projection lag (commit to visible in the query API) is probed at idle and during the
16 and 64 phases by one extra task: it posts with `Prefer: respond-async` (the service
answers 202 right after its commit, with X-Ledger-Position), then GETs the client with
`X-Ledger-Min-Position` (the query route waits server-side until the read models have
the position). The lag is the time from the 202 to that GET's 200, so it includes one
GET round trip; the idle round trip of a plain GET is printed for reference.

At the end the sum of all balances from the summary route must equal the number of
committed postings x 1.00 (the process exits 1 otherwise). The service is stopped with
SIGINT and the environment dropped even on failure. Then, on the same PostgreSQL with
the service stopped, the peer runs at concurrency 1 and 16 for the same time per phase
(peer.py), and the summary prints the ratios, `vs eventsourcing` and the CPU per
posting by process (summary.py).

The pieces: the service process (service_process.py), the counting HTTP client
(counting_client.py), the postings and the lag probe (posting_workloads.py), the
phases (posting_phases.py), the baseline (baseline.py), the subscriber queue
(subscriber_queue.py), the peer (peer.py), CPU use (cpu_use.py), the figures
(figures.py) and the summary (summary.py).
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
from tests.bench.baseline import BASELINE_TABLE
from tests.bench.counting_client import Ledger
from tests.bench.cpu_use import Watch
from tests.bench.figures import lag_text, ms, percentile
from tests.bench.peer import measure_peer
from tests.bench.posting_phases import (
    CONCURRENCIES,
    Bench,
    Results,
    default_phases,
    record_phases,
)
from tests.bench.posting_workloads import probe_lag
from tests.bench.service_process import (
    DEFAULT_AMQP,
    DEFAULT_POSTGRES,
    running_service,
    tail,
    tuning,
    wait_ready,
)
from tests.bench.summary import print_summary
from tests.support.environment import (
    Environment,
    create_environment,
    drop_environment,
    free_port,
)

CLIENTS = 200
PEER_CONCURRENCIES = (1, 16)
IDLE_PROBE_S = 2.0
AMOUNT = Decimal("1.00")
REQUEST_TIMEOUT_S = 30.0


async def bench(args: argparse.Namespace) -> int:
    """Our phases with the service running, then the peer's with it stopped, then
    the summary; exit 1 when the exactness check failed."""
    results = Results()
    exit_code = await bench_service(args, results)
    print("eventsourcing (the peer; the service stopped)")
    peer = await measure_peer(args.postgres, CLIENTS, PEER_CONCURRENCIES, args.seconds)
    print_summary(results, peer)
    return exit_code


async def bench_service(args: argparse.Namespace, results: Results) -> int:
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
                    return await measure(args, env, port, process, log_path, results)
                except BaseException:
                    print(
                        f"--- service log (tail) ---\n{tail(log_path)}", file=sys.stderr
                    )
                    raise
    finally:
        await drop_environment(env)


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


async def measure(
    args: argparse.Namespace,
    env: Environment,
    port: int,
    process: subprocess.Popen[bytes],
    log_path: Path,
    results: Results,
) -> int:
    """Set up the business and its clients, run every phase of ours into `results`,
    then check that the balances add up."""
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
        personal = await create_clients(ledger, personal=True)
        await idle_lag(ledger, clients)
        phases = Bench(env, admin, ledger, clients, watch, args.seconds, personal)
        await default_phases(phases, results)
        await record_phases(phases, results)
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


async def create_clients(ledger: Ledger, personal: bool = False) -> list[int]:
    """CLIENTS clients (with every personal field if `personal`), 16 at a time."""
    started = time.perf_counter()
    numbers = iter(range(CLIENTS))
    clients: list[int] = []

    async def creator() -> None:
        for number in numbers:
            clients.append(await ledger.create_client(number, personal))

    await asyncio.gather(*(creator() for _ in range(16)))
    kind = " with every personal field" if personal else ""
    elapsed = time.perf_counter() - started
    print(f"created {len(clients)} clients{kind} in {elapsed:.1f} s")
    return sorted(clients)


async def check_exactness(ledger: Ledger) -> int:
    summary = await ledger.summary()
    total = Decimal(summary["total_balance"])
    expected = ledger.committed * AMOUNT
    if ledger.errors:
        print(f"errors (uncertain whether committed): {ledger.errors}")
    verdict = (
        "exact"
        if total == expected and summary["customer_count"] == 2 * CLIENTS
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
