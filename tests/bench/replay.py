"""Bench: rebuild every read model from 1,000,000 events (`ledger replay`), then audit.

Writes a history straight into a throwaway database's event store (valid hash chains,
COPY, no service running): BUSINESSES businesses, each with clients that have a
client.created, transaction postings and deposit postings, EVENTS in all. Then runs
`ledger replay --json` and `ledger audit verify --json` as subprocesses (as an
operator would) and prints their time, events/s and peak memory (each process's own
ru_maxrss), and checks a few read-model figures against what was written.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import subprocess
import sys
import time

import msgspec

from services.cli.businesses import provision_business
from shared import events as e
from shared.store.event_store import append
from shared.store.new_events import NewEvent, StreamHead, chain, copy_rows
from shared.store.postgres import connect
from tests.bench.service_process import DEFAULT_AMQP, DEFAULT_POSTGRES
from tests.support.environment import Environment, create_environment, drop_environment

EVENTS = 1_000_000
BUSINESSES = 10
PER_CLIENT = 20  # 1 client.created, 15 transactions, 4 deposit postings
CHUNK = 20_000


def client_events(
    key: bytes, business_id: int, category_id: int, client_id: int, at: dt.datetime
) -> list[NewEvent]:
    stream = e.client_stream(client_id)
    metadata = e.Metadata(correlation_id=f"bench-{client_id}", principal="bench")
    payloads: list[e.LedgerEvent] = [
        e.ClientCreated(
            client_id=client_id,
            account_id=1000 + client_id,
            category_id=category_id,
            business_name=f"Client {client_id}",
        )
    ]
    day = at.date()
    for n in range(15):
        payloads.append(
            e.TransactionPosted(
                transaction_id=client_id * 100 + n,
                client_id=client_id,
                account_id=1000 + client_id,
                entry_type="debit" if n % 3 else "credit",
                amount_minor=(client_id * 7 + n * 13) % 100_000 + 1,
                date=day,
            )
        )
    for n in range(4):
        payloads.append(
            e.DepositPosted(
                deposit_id=client_id * 100 + 50 + n,
                client_id=client_id,
                deposit_account_id=2000 + client_id,
                entry_type="debit" if n < 3 else "credit",
                amount_minor=1_000,
                date=day,
            )
        )
    return chain(key, business_id, stream, StreamHead(), payloads, at, metadata)


async def write_history(env: Environment, events: int) -> tuple[int, float]:
    """The events, written with COPY in chunks; returns (events, seconds)."""
    key = env.settings.hmac_key.encode()
    businesses = []
    for n in range(BUSINESSES):
        created = await provision_business(env.settings, f"Replay bench {n}")
        businesses.append(int(str(created["business_id"])))
    conn = await connect(env.admin_url)
    categories = {
        row["business_id"]: row["category_id"]
        for row in await conn.fetch(
            "SELECT business_id, category_id FROM category_names"
        )
    }
    started = time.perf_counter()
    written, client_id, chunk = 0, 1_000_000, []
    at = dt.datetime.now(dt.UTC)
    try:
        while written < events:
            business_id = businesses[client_id % BUSINESSES]
            chunk += client_events(
                key, business_id, categories[business_id], client_id, at
            )
            client_id += 1
            written += PER_CLIENT
            if len(chunk) >= CHUNK or written >= events:
                await append(conn, copy_rows(chunk))
                chunk = []
                print(f"\rwritten {written:,} events", end="", flush=True)
    finally:
        await conn.close()
    print()
    return written, time.perf_counter() - started


def run_cli(env: Environment, *args: str) -> tuple[dict[str, object], float]:
    environ = {
        **os.environ,
        "LEDGER_DATABASE_URL": env.settings.database_url,
        "LEDGER_ADMIN_DATABASE_URL": env.admin_url,
        "LEDGER_HMAC_KEY": env.settings.hmac_key,
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args, "--json"],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{args}: exit {done.returncode}\n{done.stderr[-3000:]}")
    result: dict[str, object] = msgspec.json.decode(done.stdout.splitlines()[-1])
    return result, seconds


async def bench(args: argparse.Namespace) -> int:
    env = await create_environment(args.postgres, args.amqp, tag="bench")
    try:
        written, seconds = await write_history(env, args.events)
        print(f"history: {written:,} events written in {seconds:.1f} s (COPY)")
        before = machine_load()
        replayed, wall = await asyncio.to_thread(run_cli, env, "replay")
        print(
            f"ledger replay: {replayed['events']:,} events in {replayed['seconds']} s"
            f" ({replayed['events_per_s']:,.0f} events/s; {wall:.1f} s with start-up),"
            f" peak RSS {replayed['peak_rss_mb']} MB; machine load {before} before,"
            f" {machine_load()} after"
        )
        audited, wall = await asyncio.to_thread(run_cli, env, "audit", "verify")
        print(
            f"ledger audit verify: ok={audited['ok']}, {audited['events']:,} events,"
            f" {audited['streams']:,} streams in {wall:.1f} s"
            f" ({int(str(audited['events'])) / wall:,.0f} events/s)"
        )
        print(f"bench process peak RSS {peak_mb():.0f} MB (the writer, not the replay)")
        print(await table_sizes(env, written))
        return 0 if audited["ok"] else 1
    finally:
        await drop_environment(env)


# The events table, its indexes (and TOAST) with it, and the read models' biggest
# tables: what a history of this size costs on disk (deploy/OPERATIONS.md, "Planned").
SIZES = """
SELECT relname, pg_total_relation_size(c.oid) AS total
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
  AND (relname = 'events' OR relname LIKE 'rm\\_%' OR relname = 'projection_tracking')
ORDER BY total DESC LIMIT 5
"""


async def table_sizes(env: Environment, events: int) -> str:
    """The biggest tables after the replay, in MB and in bytes per event."""
    conn = await connect(env.admin_url)
    try:
        rows = await conn.fetch(SIZES)
    finally:
        await conn.close()
    return "on disk: " + ", ".join(
        f"{row['relname']} {row['total'] / 2**20:,.0f} MB"
        f" ({row['total'] / max(events, 1):,.0f} B/event)"
        for row in rows
    )


def machine_load() -> str:
    """The 1-minute load average against the cores: how busy the machine was (other
    people's benchmarks and tests run on it too)."""
    return f"{os.getloadavg()[0]:.2f}/{os.cpu_count()} cores"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.replay")
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="superuser URL")
    parser.add_argument("--amqp", default=DEFAULT_AMQP)
    return asyncio.run(bench(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
