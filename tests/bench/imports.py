"""Bench: xlsx imports of 10,000 and 100,000 rows against `ledger run`, then the export.

Starts the real service on a throwaway database (tests.bench.service_process), uploads
files built with XlsxWriter, and reports for each: seconds to the answer, rows/s, how
long until the status says done (and how long after the answer), the service
process's peak memory, and, from the upload until done, the answers (by status, and
the slowest) of the importing business's GETs and client-creating POSTs, and of
another business's postings, each sent every 50 ms: the other business's should all
be 201 (read-your-writes within its bound); the importing business's own commands may
wait behind its import.

Once the last import is done (visible in the read models), it downloads the business's
export (GET /api/v3/clients/clients-print/{bid}) and reports the rows in the file (read
back with openpyxl, header left out), its size, seconds, rows/s, the API process's peak
memory during the export, and the slowest GET /healthz sent every 50 ms meanwhile.
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
import openpyxl
import xlsxwriter

from services.cli.businesses import provision_business
from shared.config import Settings
from tests.bench.import_probes import probe, probe_health, probe_other
from tests.bench.service_process import (
    DEFAULT_AMQP,
    DEFAULT_POSTGRES,
    running_service,
    tail,
    wait_ready,
)
from tests.support.environment import create_environment, drop_environment, free_port
from tests.support.workbooks import HEADER, form

SIZES = (10_000, 100_000)


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


def api_pid(pid: int) -> int:
    """The `ledger api` child of `ledger run`."""
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"api" in argv:
            return int(child)
    raise RuntimeError(f"no `api` child of process {pid}")


def status_mb(pid: int, field: str) -> float:
    """A memory line (VmRSS, VmHWM) of /proc/<pid>/status in MB; 0 once it is gone."""
    status = Path(f"/proc/{pid}/status")
    try:
        lines = status.read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: 5 into clear_refs); False if the
    kernel or the permissions do not allow it."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def sample_rss(pid: int, stop: asyncio.Event) -> float:
    """The largest VmRSS of `pid` sampled every 10 ms while `stop` is unset."""
    largest = status_mb(pid, "VmRSS")
    while not stop.is_set():
        largest = max(largest, status_mb(pid, "VmRSS"))
        await asyncio.sleep(0.01)
    return max(largest, status_mb(pid, "VmRSS"))


def count_rows(raw: bytes) -> int:
    """Rows of the first sheet, header left out, read back with openpyxl."""
    book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True)
    try:
        rows = sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
    finally:
        book.close()
    return rows - 1


async def export_once(http: aiohttp.ClientSession, bid: str, pid: int) -> str:
    api = api_pid(pid)
    reset = reset_peak_rss(api)
    before_mb = status_mb(api, "VmRSS")
    stop = asyncio.Event()
    sampler = asyncio.ensure_future(sample_rss(api, stop))
    prober = asyncio.ensure_future(probe_health(http, stop))
    started = time.perf_counter()
    try:
        async with http.get(f"/api/v3/clients/clients-print/{bid}") as response:
            raw = await response.read()
            status = response.status
        elapsed_s = time.perf_counter() - started
    finally:
        stop.set()
        sampled_mb = await sampler
        slowest_health = await prober
    if status != 200:
        raise RuntimeError(f"export answered {status}: {raw[:500]!r}")
    hwm = f"VmHWM {status_mb(api, 'VmHWM'):.0f} MB" if reset else "VmHWM not reset"
    rows = await asyncio.to_thread(count_rows, raw)
    return (
        f"export: {status}, {rows:,} rows, {len(raw):,} bytes"
        f" ({len(raw) / 2**20:.1f} MiB) in {elapsed_s:.1f} s"
        f" ({rows / elapsed_s:,.0f} rows/s); API process RSS {before_mb:.0f} MB"
        f" before, peak {sampled_mb:.0f} MB sampled, {hwm};"
        f" slowest GET /healthz {slowest_health * 1000:.0f} ms meanwhile"
    )


async def import_once(
    http: aiohttp.ClientSession,
    headers: dict[str, str],
    other: dict[str, str],
    rows: int,
    pid: int,
) -> str:
    """Upload, wait for the 202 and then for the status `done`, with the importing
    business's own requests and another business's postings probed throughout."""
    raw = build_file(rows)
    stop = asyncio.Event()
    prober = asyncio.ensure_future(probe(http, headers, stop))
    other_prober = asyncio.ensure_future(probe_other(http, other, stop))
    started = time.perf_counter()
    async with http.post(
        "/api/v3/clients/import", data=form(raw), headers=headers
    ) as response:
        answer: dict[str, Any] = await response.json()
        status = response.status
    answered_s = time.perf_counter() - started
    done_s = await wait_done(http, headers, answer, started)
    stop.set()
    gets, posts = await prober
    others = await other_prober
    return (
        f"{rows:>7} rows ({len(raw) / 2**20:.1f} MiB): {status} in {answered_s:.1f} s"
        f" ({rows / answered_s:,.0f} rows/s), done after {done_s:.1f} s"
        f" ({done_s - answered_s:.1f} s after its {status});"
        f" largest process peak RSS {peak_rss_mb(pid):.0f} MB\n"
        f"    meanwhile, until done: its business's GETs {gets.text()};"
        f" its POSTs {posts.text()}\n"
        f"    another business's postings: {others.text()}"
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
                base = f"http://127.0.0.1:{port}"
                timeout = aiohttp.ClientTimeout(total=1800)
                async with aiohttp.ClientSession(base, timeout=timeout) as http:
                    await wait_ready(http, process, log_path)
                    business = await provision_business(env.settings, "Bench")
                    headers = {"Authorization": f"Bearer {business['api_key']}"}
                    other = await provision_business(env.settings, "Other")
                    others = {"Authorization": f"Bearer {other['api_key']}"}
                    for rows in args.rows:
                        print(
                            await import_once(http, headers, others, rows, process.pid)
                        )
                    print(await export_once(http, business["bid"], process.pid))
                print(tail(log_path, 2000))
    finally:
        await drop_environment(env)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.imports")
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=list(SIZES),
        help="import sizes, in order; the export follows the last (e.g. --rows 1000)",
    )
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="superuser URL")
    parser.add_argument("--amqp", default=DEFAULT_AMQP)
    return asyncio.run(bench(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
