"""`make bench`'s last part (alone: `make bench-api-processes`): postings/s and reads/s
with one API process against one per core (at least 2, at most 4): what a second
process buys or costs (`ledger run`'s default is one per two cores).

For each count, the service is started as `make run` does with LEDGER_API_PROCESSES
set, on a throwaway database; a business and 200 clients are created; then for the
same time each, at concurrency 64 over 64 keep-alive connections (which the kernel
spreads over the processes' sockets, SO_REUSEPORT): 1.00 debits on the default path
(read-your-writes on, durable commits), then `GET /clients/{id}` of random clients.
Each phase prints its rate, p50, p99 and CPU use by process; the summary prints both
counts side by side and the CPU per operation in ms by process (the API processes
summed), as `make bench`'s summary does. The balances must add up at the end of each
run (exit 1 otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from services.cli import api_processes
from services.cli.businesses import provision_business
from tests.bench.counting_client import Ledger
from tests.bench.cpu_use import Watch, cpu_line, measured
from tests.bench.figures import Phase
from tests.bench.posting_workloads import run_postings
from tests.bench.postings import CLIENTS, check_exactness, create_clients
from tests.bench.service_process import (
    DEFAULT_AMQP,
    DEFAULT_POSTGRES,
    running_service,
    wait_ready,
)
from tests.bench.summary import COLUMNS, cpu_columns
from tests.support.environment import create_environment, drop_environment, free_port

CONCURRENCY = 64


async def read_for(
    ledger: Ledger, clients: Sequence[int], deadline: float, phase: Phase, seed: int
) -> None:
    """GET random clients until the deadline."""
    rng = random.Random(seed)
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            status = await ledger.get_client(rng.choice(clients))
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        if status != 200:
            phase.failed += 1
            continue
        phase.latencies.append(time.perf_counter() - started)
        phase.count += 1


async def run_reads(
    ledger: Ledger, clients: Sequence[int], seconds: float, watch: Watch
) -> Phase:
    phase = Phase()
    with measured(phase, watch):
        deadline = time.perf_counter() + seconds
        await asyncio.gather(
            *(read_for(ledger, clients, deadline, phase, n) for n in range(CONCURRENCY))
        )
    return phase


async def measure_count(
    args: argparse.Namespace, processes: int
) -> tuple[dict[str, Phase], int]:
    """Postings then reads with `processes` API processes; the exactness verdict."""
    env = await create_environment(args.postgres, args.amqp, tag="bench-api")
    overrides = {"LEDGER_API_PROCESSES": str(processes)}
    try:
        with tempfile.TemporaryDirectory(prefix="ledger-bench-") as directory:
            log_path, port = Path(directory) / "ledger-run.log", free_port()
            async with (
                running_service(env, port, log_path, overrides) as process,
                aiohttp.ClientSession(
                    base_url=f"http://127.0.0.1:{port}",
                    connector=aiohttp.TCPConnector(limit=CONCURRENCY + 8),
                    timeout=aiohttp.ClientTimeout(total=30),
                ) as http,
            ):
                await wait_ready(http, process, log_path)
                business = await provision_business(env.settings, "Bench business")
                ledger = Ledger(http, str(business["api_key"]))
                clients = await create_clients(ledger)
                await create_clients(ledger)  # the exactness check counts 2 x CLIENTS
                database = env.admin_url.rsplit("/", 1)[-1]
                watch = Watch(supervisor=process.pid, database=database)
                phases = {
                    "postings": await run_postings(
                        ledger, clients, CONCURRENCY, args.seconds, watch, None
                    ),
                    "reads": await run_reads(ledger, clients, args.seconds, watch),
                }
                for name, phase in phases.items():
                    print(f"  {name:9} {phase.figures()}")
                    print(f"    cpu (cores): {cpu_line(phase)}")
                return phases, await check_exactness(ledger)
    finally:
        await drop_environment(env)


def print_comparison(results: dict[int, dict[str, Phase]]) -> None:
    """Rates side by side, then CPU per operation by process."""
    counts = sorted(results)
    print("summary: API processes " + " against ".join(map(str, counts)))
    for name in ("postings", "reads"):
        rates = [results[n][name].rate for n in counts]
        print(
            f"  {name}/s: "
            + ", ".join(
                f"{n} process(es) {r:.1f}" for n, r in zip(counts, rates, strict=True)
            )
            + f" ({rates[-1] / rates[0]:.2f}x)"
        )
    print("CPU per operation (ms), by process; API = every API process summed")
    print("| phase | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name in ("postings", "reads"):
        for n in counts:
            cells = cpu_columns(results[n][name])
            print(
                f"| {name}, {n} API | "
                + " | ".join(f"{cells[c]:.2f}" for c in COLUMNS)
                + " |"
            )


async def bench(args: argparse.Namespace) -> int:
    default = min(api_processes.usable_cores(), api_processes.DEFAULT_MAX)
    counts = [1, args.processes or max(2, default)]
    results: dict[int, dict[str, Phase]] = {}
    verdict = 0
    for count in counts:
        print(
            f"{count} API process(es): {args.seconds:g} s each, postings then reads,"
            f" concurrency {CONCURRENCY}, {CLIENTS} clients"
        )
        results[count], exact = await measure_count(args, count)
        verdict |= exact
    print_comparison(results)
    return verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.api_processes")
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    parser.add_argument(
        "--processes",
        type=int,
        help="N to compare with 1 (default: one per core, at least 2)",
    )
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="superuser URL")
    parser.add_argument("--amqp", default=DEFAULT_AMQP)
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
