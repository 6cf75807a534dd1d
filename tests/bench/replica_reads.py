"""`make bench-replicas` (and the last phase of `make bench`): reads spread over the
primary and the local hot standby, against the primary alone.

Starts `ledger run` twice on one throwaway database (200 clients made first): once
with the primary alone, once with LEDGER_READ_DATABASE_URLS naming the standby
(deploy/local/ensure-standby.sh makes it on 127.0.0.1:5433). Each phase runs, for
the same time, READERS tasks that GET a random client and WRITERS tasks that post a
debit to a random client (each waiting for read-your-writes, which with the replica
includes its replay). It prints reads/s with p50/p99, postings/s with p50/p99 (the
write latency the replica's wait adds), and the CPU seconds per second the primary's
PostgreSQL (the postmaster at 127.0.0.1:5432 and its children) and the standby's
spent, from Linux's /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from services.cli.businesses import provision_business
from tests.bench.figures import ms, percentile
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
from tests.support.standby import (
    replica_url,
    require_standby,
    server_major,
    standby_dir,
)

CLIENTS = 200
READERS = 16
WRITERS = 4
PRIMARY_DIR = "/var/lib/postgresql/{major}/main"  # Debian's, for the version
TICKS = os.sysconf("SC_CLK_TCK")


def _data_dirs() -> tuple[str, str]:
    return PRIMARY_DIR.format(major=server_major()), standby_dir()


def cluster_cpu_s(data_dir: str, database: str) -> tuple[float, float]:
    """CPU seconds used so far by a cluster (its postmaster, the children it has
    reaped and those still running: what exits mid-phase is still counted), and by
    its backends serving `database` (by their process titles), from /proc."""
    try:
        postmaster = Path(f"{data_dir}/postmaster.pid").read_text().split()[0]
    except OSError:
        return float("nan"), float("nan")
    total = ours = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            title = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        used = (int(fields[11]) + int(fields[12])) / TICKS
        if stat.parent.name == postmaster:
            total += used + (int(fields[13]) + int(fields[14])) / TICKS
        elif fields[1] == postmaster:
            total += used
            ours += used if f" {database} ".encode() in title else 0.0
    return total, ours


async def _reader(
    http: aiohttp.ClientSession, headers: dict[str, str], ids: list[int], end: float
) -> list[float]:
    latencies = []
    while time.perf_counter() < end:
        started = time.perf_counter()
        async with http.get(
            f"/api/v3/clients/{random.choice(ids)}", headers=headers
        ) as answer:
            await answer.read()
            assert answer.status == 200, answer.status
        latencies.append(time.perf_counter() - started)
    return latencies


async def _writer(
    http: aiohttp.ClientSession, headers: dict[str, str], ids: list[int], end: float
) -> list[float]:
    latencies = []
    while time.perf_counter() < end:
        started = time.perf_counter()
        async with http.post(
            f"/api/v3/clients/{random.choice(ids)}/transactions",
            json={"type": "debit", "amount": "1.00"},
            headers=headers,
        ) as answer:
            await answer.read()
            assert answer.status == 201, answer.status
        latencies.append(time.perf_counter() - started)
    return latencies


async def _clients(http: aiohttp.ClientSession, headers: dict[str, str]) -> list[int]:
    ids: list[int] = []
    for number in range(CLIENTS):
        async with http.post(
            "/api/v3/clients", json={"business_name": f"C{number}"}, headers=headers
        ) as answer:
            ids.append((await answer.json())["id"])
    return ids


async def phase(
    env: Environment, label: str, seconds: float, extra: dict[str, str]
) -> None:
    """One `ledger run` (with `extra` settings), warmed for a second, then measured."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as directory:
        log_path = Path(directory) / "ledger-run.log"
        async with (
            running_service(env, port, log_path, extra) as process,
            aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http,
        ):
            await wait_ready(http, process, log_path)
            business = await provision_business(env.settings, f"Bench {label}")
            headers = {"Authorization": f"Bearer {business['api_key']}"}
            ids = await _clients(http, headers)
            await asyncio.sleep(1.0)  # the replica joins the rotation meanwhile
            database = env.admin_url.rsplit("/", 1)[-1]
            before = [cluster_cpu_s(d, database) for d in _data_dirs()]
            started = time.perf_counter()
            end = started + seconds
            results = await asyncio.gather(
                *(_reader(http, headers, ids, end) for _ in range(READERS)),
                *(_writer(http, headers, ids, end) for _ in range(WRITERS)),
            )
            elapsed = time.perf_counter() - started
            after = [cluster_cpu_s(d, database) for d in _data_dirs()]
    (primary, primary_ours), (standby, standby_ours) = (
        ((end[0] - start[0]) / elapsed, (end[1] - start[1]) / elapsed)
        for start, end in zip(before, after, strict=True)
    )
    reads = [value for result in results[:READERS] for value in result]
    writes = [value for result in results[READERS:] for value in result]
    print(
        f"{label}: reads {len(reads) / elapsed:,.0f}/s (p50 "
        f"{ms(percentile(reads, 0.5))} ms, p99 {ms(percentile(reads, 0.99))} ms);"
        f" postings {len(writes) / elapsed:,.0f}/s (p50"
        f" {ms(percentile(writes, 0.5))} ms, p99 {ms(percentile(writes, 0.99))} ms);"
        f"\n    CPU s/s: primary PostgreSQL {primary:.2f} (the bench database's"
        f" backends {primary_ours:.2f}), standby {standby:.2f} (backends"
        f" {standby_ours:.2f})"
    )


async def bench(args: argparse.Namespace) -> int:
    await require_standby()
    env = await create_environment(args.postgres, args.amqp, tag="benchrep")
    try:
        print(
            f"read replicas: {READERS} readers (GET a client) and {WRITERS} writers"
            f" (POST a debit, read-your-writes on), {args.seconds:g} s each"
        )
        await phase(env, "primary alone", args.seconds, {})
        read_urls = {"LEDGER_READ_DATABASE_URLS": replica_url(env)}
        await phase(env, "with the standby", args.seconds, read_urls)
    finally:
        await drop_environment(env)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.replica_reads")
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="superuser URL")
    parser.add_argument("--amqp", default=DEFAULT_AMQP)
    args = parser.parse_args(argv)
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
