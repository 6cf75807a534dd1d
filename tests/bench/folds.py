"""Bench: does folding (audit verify, `as_of`) stall the API's event loop?

Starts the real service as `make run` does (tests.bench.service_process), imports
`--rows` clients (each with a debit and a deposit: three events a row) into each of two
businesses, then for `--seconds` keeps four `as_of` summaries and four audit verifies
in flight at all times (two of each per business, so the default per-business bound of
four is not what limits them), while one task GETs /healthz every 10 ms. Prints the
/healthz latency (p50, p99, max), and how many folds were answered, by status.

The issue's figure before the folds moved off the loop: ten `as_of` summaries and five
audits at once pushed /healthz p99 to 217 ms; the target is p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

from services.cli.businesses import provision_business
from tests.bench.figures import percentile
from tests.bench.imports import build_file, wait_done
from tests.bench.service_process import (
    DEFAULT_AMQP,
    DEFAULT_POSTGRES,
    running_service,
    tail,
    wait_ready,
)
from tests.support.environment import create_environment, drop_environment, free_port
from tests.support.workbooks import form

PROBE_INTERVAL_S = 0.01
ROUTES = ("/api/v3/clients/summary?as_of=2999-01-01", "/api/v3/audit/verify")


async def populate(
    http: aiohttp.ClientSession, headers: dict[str, str], rows: int
) -> None:
    """Import `rows` clients and wait until the read models have them all."""
    async with http.post(
        "/api/v3/clients/import", data=form(build_file(rows)), headers=headers
    ) as response:
        answer = await response.json()
        assert response.status in (201, 202), answer
    await wait_done(http, headers, answer, time.perf_counter())


async def keep_folding(
    http: aiohttp.ClientSession,
    headers: dict[str, str],
    path: str,
    until: float,
    statuses: Counter[str],
) -> None:
    """Send `path` again as soon as it answers, until `until`."""
    while time.monotonic() < until:
        async with http.get(path, headers=headers) as response:
            await response.read()
            statuses[f"{path.split('?')[0]} {response.status}"] += 1


async def probe_health(http: aiohttp.ClientSession, until: float) -> list[float]:
    latencies = []
    while time.monotonic() < until:
        started = time.perf_counter()
        async with http.get("/healthz") as response:
            await response.read()
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(PROBE_INTERVAL_S)
    return latencies


async def measure(
    http: aiohttp.ClientSession, businesses: list[dict[str, str]], seconds: float
) -> str:
    until = time.monotonic() + seconds
    statuses: Counter[str] = Counter()
    folders = [
        keep_folding(http, headers, path, until, statuses)
        for headers in businesses
        for path in ROUTES
        for _ in range(2)
    ]
    latencies, *_ = await asyncio.gather(probe_health(http, until), *folders)
    return (
        f"/healthz x{len(latencies)}: p50 {percentile(latencies, 0.5) * 1000:.1f} ms,"
        f" p99 {percentile(latencies, 0.99) * 1000:.1f} ms,"
        f" max {max(latencies) * 1000:.1f} ms;"
        f" answered: {dict(sorted(statuses.items()))}"
    )


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
                    businesses = []
                    for name in ("Folds A", "Folds B"):
                        business = await provision_business(env.settings, name)
                        headers = {"Authorization": f"Bearer {business['api_key']}"}
                        await populate(http, headers, args.rows)
                        businesses.append(headers)
                    print(f"{args.rows} rows per business, {args.seconds:g} s:")
                    print(await measure(http, businesses, args.seconds))
                print(tail(log_path, 1000))
    finally:
        await drop_environment(env)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.folds")
    parser.add_argument("--rows", type=int, default=20_000, help="per business")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="superuser URL")
    parser.add_argument("--amqp", default=DEFAULT_AMQP)
    return asyncio.run(bench(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
