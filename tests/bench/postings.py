"""`make bench`: postings per second over HTTP against a group-commit-free baseline.

Starts the real service the way `make run` does (`python -m services.cli.main run`)
against
a throwaway database and uniquely named exchange and queues, creates a business and
200 clients, then for each concurrency (1, 16, 64):

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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from services.cli.businesses import provision_business
from shared.config import Settings
from tests.support.environment import (
    Environment,
    create_environment,
    drop_environment,
    free_port,
    service_environment,
)

# The local servers, as in tests/conftest.py (DEFAULT_POSTGRES, DEFAULT_AMQP).
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/"

REPOSITORY = Path(__file__).resolve().parents[2]
CLIENTS = 200
CONCURRENCIES = (1, 16, 64)
LAG_PROBED_AT = (16, 64)
IDLE_PROBE_S = 2.0
AMOUNT = Decimal("1.00")
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 30.0
REQUEST_TIMEOUT_S = 30.0
POLL_S = 0.1
CONNECT_DEADLINE_S = 10.0
NOISY_CORES = 0.2  # other processes' CPU above which the figures are flagged


# ---------------------------------------------------------------------------- figures


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of `values`; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


@dataclass
class Phase:
    """One timed run: how many operations completed, their latencies, the CPU used."""

    count: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    connections: int | None = None  # a baseline's, if fewer than its concurrency

    @property
    def rate(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s else 0.0

    def figures(self) -> str:
        return (
            f"{self.rate:8.1f}/s  p50 {ms(percentile(self.latencies, 0.5)):>6} ms"
            f"  p99 {ms(percentile(self.latencies, 0.99)):>6} ms"
            f"  (n={self.count}, failed={self.failed})"
            + (f" on {self.connections} connections" if self.connections else "")
        )


# ------------------------------------------------------ CPU per process, from /proc


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: str) -> tuple[str, int, float] | None:
    """(command name, parent pid, CPU seconds used) of a process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    rest = text[text.rindex(")") + 2 :].split()
    return name, int(rest[1]), (int(rest[11]) + int(rest[12])) / _TICKS


def _role(pid: str) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [word.decode() for word in argv if word]
    tail = (
        words[words.index("services.cli.main") + 1 :]
        if "services.cli.main" in words
        else words
    )
    return " ".join(word for word in tail if word != "--projection")


def _machine_busy_s() -> float:
    """CPU seconds all cores have spent busy (not idle, waiting for I/O or stolen)."""
    ticks = [int(word) for word in Path("/proc/stat").read_text().split()[1:8]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICKS


@dataclass(frozen=True)
class Watch:
    """What to account CPU to: the service's supervisor and the bench's database."""

    supervisor: int
    database: str


def cpu_snapshot(watch: Watch) -> dict[str, float]:
    """CPU seconds so far of this process, each service process, PostgreSQL (backends
    on the bench database and the server's own processes), RabbitMQ, and the whole
    machine ("machine"). Empty off Linux."""
    used: dict[str, float] = {}
    if not Path("/proc/stat").exists():
        return used
    for pid in filter(str.isdigit, os.listdir("/proc")):
        found = _stat(pid)
        if found is None:
            continue
        name, parent, seconds = found
        if int(pid) == os.getpid():
            role = "bench"
        elif parent == watch.supervisor:
            role = _role(pid)
        elif name == "postgres":
            command = _role(pid)
            if f" {watch.database} " not in command and "(" in command:
                continue  # a backend of another database: someone else's work
            role = "postgres"
        elif name == "beam.smp":
            role = "rabbitmq"
        else:
            continue
        used[role] = used.get(role, 0.0) + seconds
    used["machine"] = _machine_busy_s()
    return used


@contextlib.contextmanager
def measured(phase: Phase, watch: Watch) -> Iterator[None]:
    """Fill the phase's elapsed time and CPU use (core-seconds per second by role)."""
    before, started = cpu_snapshot(watch), time.perf_counter()
    try:
        yield
    finally:
        phase.elapsed_s = time.perf_counter() - started
        after = cpu_snapshot(watch)
        phase.cpu = {
            role: (after[role] - before.get(role, 0.0)) / phase.elapsed_s
            for role in after
            if phase.elapsed_s > 0
        }


def others(phase: Phase) -> float:
    """Cores other processes on the machine used during the phase (noise)."""
    shares = dict(phase.cpu)
    machine = shares.pop("machine", math.nan)
    return max(0.0, machine - sum(shares.values()))


def cpu_line(phase: Phase) -> str:
    """`machine 1.9/2 (others 0.3): api 0.5, ...; 6.1 ms CPU per op` (cores), where
    the CPU per operation counts the service, PostgreSQL and RabbitMQ, not the bench:
    unlike the rates, it barely moves when other work shares the machine."""
    shares = dict(phase.cpu)
    machine = shares.pop("machine", math.nan)
    ranked = sorted(shares.items(), key=lambda item: -item[1])
    serving = sum(share for role, share in shares.items() if role != "bench")
    per_op = serving / phase.rate * 1000 if phase.rate else math.nan
    return (
        f"machine {machine:.2f}/{os.cpu_count()} (others {others(phase):.2f}): "
        + ", ".join(f"{role} {share:.2f}" for role, share in ranked if share >= 0.005)
        + f"; {per_op:.2f} ms CPU per op without the bench"
    )


# ------------------------------------------------------------------------ the service


# Settings the bench passes on to the service when set in its own environment, e.g.
# LEDGER_BATCH_SIZE_MAX=1 to measure one transaction per command against group commit.
TUNING = ("LEDGER_BATCH_SIZE_MAX",)


def tuning() -> dict[str, str]:
    return {name: os.environ[name] for name in TUNING if name in os.environ}


def spawn_service(
    env: Environment, port: int, log_path: Path
) -> subprocess.Popen[bytes]:
    """Start `python -m services.cli.main run`, its output going to `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "run"],
            cwd=REPOSITORY,
            env={**service_environment(env, port), **tuning()},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a failed stop can end it alone
        )


@contextlib.asynccontextmanager
async def running_service(
    env: Environment, port: int, log_path: Path
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """`python -m services.cli.main run` until the block ends, then SIGINT (Ctrl-C)."""
    process = spawn_service(env, port, log_path)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(process.wait, STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            print(f"service: no exit {STOP_DEADLINE_S} s after SIGINT; killing it")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def wait_ready(
    http: aiohttp.ClientSession, process: subprocess.Popen[bytes], log_path: Path
) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"the service exited ({process.returncode}):\n{tail(log_path)}"
            )
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get("/readyz") as response:
                if response.status == 200:
                    return
        if time.monotonic() > deadline:
            raise RuntimeError(f"/readyz not 200 within {START_DEADLINE_S} s")
        await asyncio.sleep(POLL_S)


def tail(path: Path, characters: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-characters:]
    except OSError:
        return ""


class Ledger:
    """The HTTP API with one business's key; counts what it committed."""

    def __init__(self, http: aiohttp.ClientSession, api_key: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.committed = 0  # 201, or 202 (committed, not yet visible)
        self.accepted = 0  # of which 202
        self.position_max = 0
        self.errors: dict[str, int] = {}

    def note_error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    async def create_client(self, number: int) -> int:
        body = {"business_name": f"Bench client {number}"}
        async with self.http.post(
            "/api/v3/clients", json=body, headers=self.headers
        ) as response:
            if response.status != 201:
                raise RuntimeError(
                    f"create client: {response.status} {await response.text()}"
                )
            created: dict[str, Any] = await response.json()
            return int(created["id"])

    async def post(self, client_id: int, respond_async: bool = False) -> int | None:
        """Post a 1.00 debit; the position when it committed, None when it did not."""
        headers = {**self.headers, "Prefer": "respond-async"} if respond_async else None
        try:
            async with self.http.post(
                f"/api/v3/clients/{client_id}/transactions",
                json={"type": "debit", "amount": "1.00"},
                headers=headers or self.headers,
            ) as response:
                await response.read()
                if response.status not in (201, 202):
                    self.note_error(f"HTTP {response.status}")
                    return None
                position = int(response.headers["X-Ledger-Position"])
        except (aiohttp.ClientError, TimeoutError) as error:
            self.note_error(type(error).__name__)  # may or may not have committed
            return None
        self.committed += 1
        self.accepted += response.status == 202
        self.position_max = max(self.position_max, position)
        return position

    async def get_client(self, client_id: int, min_position: int | None = None) -> int:
        headers = dict(self.headers)
        if min_position is not None:
            headers["X-Ledger-Min-Position"] = str(min_position)
        async with self.http.get(
            f"/api/v3/clients/{client_id}", headers=headers
        ) as response:
            await response.read()
            return response.status

    async def summary(self) -> dict[str, Any]:
        headers = {**self.headers, "X-Ledger-Min-Position": str(self.position_max)}
        async with self.http.get(
            "/api/v3/clients/summary", headers=headers
        ) as response:
            text = await response.text()
            if response.status != 200:
                raise RuntimeError(f"summary: {response.status} {text}")
            body: dict[str, Any] = json.loads(text, parse_float=Decimal)
            return body


# -------------------------------------------------------------------------- workloads


async def post_for(
    ledger: Ledger, clients: Sequence[int], deadline: float, phase: Phase, seed: int
) -> None:
    """Post to random clients on the default path until the deadline."""
    rng = random.Random(seed)
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        if await ledger.post(rng.choice(clients)) is None:
            phase.failed += 1
            continue
        phase.latencies.append(time.perf_counter() - started)
        phase.count += 1


async def probe_lag(
    ledger: Ledger,
    clients: Sequence[int],
    deadline: float,
    lags: list[float],
    round_trips: list[float] | None = None,
) -> None:
    """Post with `Prefer: respond-async`, then time the 202 -> visible GET (200)."""
    rng = random.Random(7)
    while time.perf_counter() < deadline:
        client_id = rng.choice(clients)
        position = await ledger.post(client_id, respond_async=True)
        if position is None:
            continue
        committed = time.perf_counter()
        try:
            status = await ledger.get_client(client_id, min_position=position)
            if status != 200:
                ledger.note_error(f"lag probe: GET {status}")
                continue
            lags.append(time.perf_counter() - committed)
            if round_trips is not None:
                started = time.perf_counter()
                await ledger.get_client(client_id)
                round_trips.append(time.perf_counter() - started)
        except (aiohttp.ClientError, TimeoutError) as error:
            ledger.note_error(f"lag probe: {type(error).__name__}")


async def run_postings(
    ledger: Ledger,
    clients: Sequence[int],
    concurrency: int,
    seconds: float,
    watch: Watch,
    lags: list[float] | None,
) -> Phase:
    phase = Phase()
    with measured(phase, watch):
        deadline = time.perf_counter() + seconds
        tasks = [
            post_for(ledger, clients, deadline, phase, n) for n in range(concurrency)
        ]
        if lags is not None:
            tasks.append(probe_lag(ledger, clients, deadline, lags))
        await asyncio.gather(*tasks)
    return phase


BASELINE_TABLE = "CREATE TABLE bench_baseline (LIKE events INCLUDING ALL)"
BASELINE_TEMPLATE = """
SELECT business_id, schema_version, payload::text, metadata::text, hash
FROM events ORDER BY (type = 'transaction.posted') DESC, position DESC LIMIT 1
"""
BASELINE_STREAMS = (
    "SELECT DISTINCT stream_id FROM events WHERE stream_id LIKE 'client-%'"
)
BASELINE_NEXT_VERSION = "SELECT coalesce(max(version), 0) + 1 FROM bench_baseline"
BASELINE_INSERT = """
INSERT INTO bench_baseline (event_id, business_id, stream_id, version, type,
    schema_version, payload, metadata, recorded_at, hash)
VALUES ($1, $2, $3, $4, 'transaction.posted', $5, $6, $7, now(), $8)
"""


async def open_connections(url: str, count: int) -> list[asyncpg.Connection]:
    """Up to `count` connections; waits a while for slots when the server is full
    (max_connections is shared with whatever else runs against it)."""
    connections: list[asyncpg.Connection] = []
    deadline = time.monotonic() + CONNECT_DEADLINE_S
    while len(connections) < count:
        try:
            connections.append(await asyncpg.connect(url))
        except asyncpg.TooManyConnectionsError:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(POLL_S)
    return connections


async def run_baseline(
    admin_url: str, concurrency: int, seconds: float, watch: Watch
) -> Phase:
    """One-row-per-transaction INSERTs (autocommit, durable) of a real event's row."""
    phase = Phase()
    connections = await open_connections(admin_url, concurrency)
    try:
        if not connections:
            raise RuntimeError("baseline: PostgreSQL has no connection slot left")
        if len(connections) < concurrency:
            phase.connections = len(connections)
        conn = connections[0]
        template = await conn.fetchrow(BASELINE_TEMPLATE)
        streams = [row["stream_id"] for row in await conn.fetch(BASELINE_STREAMS)]
        first = await conn.fetchval(BASELINE_NEXT_VERSION)
        versions = iter(range(first, 1 << 62))  # one counter: (stream, version) unique

        async def insert_for(
            conn: asyncpg.Connection, deadline: float, seed: int
        ) -> None:
            rng = random.Random(seed)
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                await conn.execute(
                    BASELINE_INSERT,
                    uuid.uuid4(),
                    template["business_id"],
                    rng.choice(streams),
                    next(versions),
                    template["schema_version"],
                    template["payload"],
                    template["metadata"],
                    template["hash"],
                )
                phase.latencies.append(time.perf_counter() - started)
                phase.count += 1

        with measured(phase, watch):
            deadline = time.perf_counter() + seconds
            await asyncio.gather(
                *(insert_for(c, deadline, n) for n, c in enumerate(connections))
            )
    finally:
        await asyncio.gather(*(c.close() for c in connections))
    return phase


# ------------------------------------------------------------------------------ main


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
        print(f"cores {os.cpu_count()} (os.cpu_count)")
        if tuning():
            print(f"service settings: {tuning()}")
        print(f"PostgreSQL {await admin.fetchval(SERVER)}")
        print(
            f"{args.seconds:g} s per phase, {CLIENTS} clients, default path "
            "(read-your-writes on, durable commits, PostgreSQL defaults)"
        )
        await wait_ready(http, process, log_path)
        business = await provision_business(env.settings, "Bench business")
        ledger = Ledger(http, str(business["api_key"]))
        clients = await create_clients(ledger)
        await idle_lag(ledger, clients)

        ratios: dict[int, float] = {}
        phases: list[Phase] = []
        for concurrency in CONCURRENCIES:
            print(f"concurrency {concurrency}")
            lags: list[float] | None = [] if concurrency in LAG_PROBED_AT else None
            first = await admin.fetchval("SELECT max(position) FROM events")
            posted = await run_postings(
                ledger, clients, concurrency, args.seconds, watch, lags
            )
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
            baseline = await run_baseline(
                env.admin_url, concurrency, args.seconds, watch
            )
            print(f"  baseline  {baseline.figures()}")
            print(f"    cpu (cores): {cpu_line(baseline)}")
            ratios[concurrency] = posted.rate / baseline.rate if baseline.rate else 0.0
            print(f"  ratio {ratios[concurrency]:.3f}")
            phases += [posted, baseline]

        print("ratios: " + ", ".join(f"c={c} {r:.3f}" for c, r in ratios.items()))
        print(f"ratio {ratios[max(CONCURRENCIES)]:.3f}")
        noise = max(others(phase) for phase in phases)
        if noise > NOISY_CORES:
            print(
                f"WARNING: other processes used up to {noise:.2f} cores during a phase;"
                " the machine was not quiet, so these figures understate both sides"
            )
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


def lag_text(lags: Sequence[float]) -> str:
    return (
        f"lag p50 {ms(percentile(lags, 0.5))} ms  p99 {ms(percentile(lags, 0.99))} ms"
        f"  (n={len(lags)})"
    )


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
