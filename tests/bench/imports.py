"""Bench: xlsx imports of 10,000 and 100,000 rows against `ledger run`.

Starts the real service on a throwaway database (as tests.bench.postings does), uploads
files built with XlsxWriter, and reports for each: seconds to the answer, rows/s, how
long until the status says done, the service process's peak memory, and the slowest
answer of a GET and of a client POST sent every 50 ms while the import ran (the stall
other readers and writers see).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import xlsxwriter

from services.businesses import provision_business
from tests.bench.postings import (
    DEFAULT_AMQP,
    DEFAULT_POSTGRES,
    running_service,
    tail,
    wait_ready,
)
from tests.support.environment import create_environment, drop_environment, free_port
from tests.support.workbooks import HEADER, form

SIZES = (10_000, 100_000)
PROBE_INTERVAL_S = 0.05


def build_file(rows: int) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "constant_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, [*HEADER, "Deposit Amount"])
    for row in range(1, rows + 1):
        sheet.write_row(row, 0, [f"Client {row}", "024", "a@b.co", "Accra", 12.5, 3])
    book.close()
    return buffer.getvalue()


def peak_rss_mb(pid: int) -> float:
    """The largest VmHWM (peak resident memory, Linux) of `ledger run` and its
    children (the API, relay and projector processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    peaks = [0.0]
    for process in [str(pid), *children]:
        status = Path(f"/proc/{process}/status")
        for line in status.read_text().splitlines() if status.exists() else []:
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


async def probe(
    http: aiohttp.ClientSession, headers: dict[str, str], stop: asyncio.Event
) -> tuple[float, float]:
    """The slowest GET and the slowest client-creating POST while `stop` is unset."""
    slowest_get = slowest_post = 0.0
    while not stop.is_set():
        started = time.perf_counter()
        async with http.get("/api/v3/clients/summary", headers=headers) as response:
            await response.read()
        slowest_get = max(slowest_get, time.perf_counter() - started)
        started = time.perf_counter()
        body = {"business_name": "Probe"}
        async with http.post("/api/v3/clients", json=body, headers=headers) as response:
            await response.read()
        slowest_post = max(slowest_post, time.perf_counter() - started)
        await asyncio.sleep(PROBE_INTERVAL_S)
    return slowest_get, slowest_post


async def import_once(
    http: aiohttp.ClientSession, headers: dict[str, str], rows: int, pid: int
) -> str:
    raw = build_file(rows)
    stop = asyncio.Event()
    prober = asyncio.ensure_future(probe(http, headers, stop))
    started = time.perf_counter()
    async with http.post(
        "/api/v3/clients/import", data=form(raw), headers=headers
    ) as response:
        answer: dict[str, Any] = await response.json()
        status = response.status
    answered_s = time.perf_counter() - started
    stop.set()
    slowest_get, slowest_post = await prober
    done_s = await wait_done(http, headers, answer, started)
    return (
        f"{rows:>7} rows ({len(raw) / 2**20:.1f} MiB): {status} in {answered_s:.1f} s"
        f" ({rows / answered_s:,.0f} rows/s), done after {done_s:.1f} s;"
        f" slowest GET {slowest_get * 1000:.0f} ms, POST {slowest_post * 1000:.0f} ms"
        f" meanwhile; largest process peak RSS {peak_rss_mb(pid):.0f} MB"
    )


async def wait_done(
    http: aiohttp.ClientSession,
    headers: dict[str, str],
    answer: dict[str, Any],
    started: float,
) -> float:
    url = f"/api/v3/clients/imports/{answer['import_id']}"
    while True:
        async with http.get(url, headers=headers) as response:
            report = await response.json()
        if response.status != 200:  # reported, and asked again
            print(f"status {response.status}: {report}")
        elif report["status"] == "done":
            return time.perf_counter() - started
        await asyncio.sleep(0.5)


async def bench(args: argparse.Namespace) -> int:
    env = await create_environment(args.postgres, args.amqp, tag="bench")
    try:
        with tempfile.TemporaryDirectory(prefix="ledger-bench-") as directory:
            log_path = Path(directory) / "ledger-run.log"
            port = free_port()
            async with running_service(env, port, log_path) as process:
                base = f"http://127.0.0.1:{port}"
                timeout = aiohttp.ClientTimeout(total=1800)
                async with aiohttp.ClientSession(base, timeout=timeout) as http:
                    await wait_ready(http, process, log_path)
                    business = await provision_business(env.settings, "Bench")
                    headers = {"Authorization": f"Bearer {business['api_key']}"}
                    for rows in args.rows:
                        print(await import_once(http, headers, rows, process.pid))
                print(tail(log_path, 2000))
    finally:
        await drop_environment(env)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.imports")
    parser.add_argument("--rows", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="superuser URL")
    parser.add_argument("--amqp", default=DEFAULT_AMQP)
    return asyncio.run(bench(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
