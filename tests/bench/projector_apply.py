"""Bench: the live projectors' apply path (projections/runner.apply_batch), by frame.

Writes a history straight into a throwaway database's event store, as bench-replay
does (clients with a client.created, 15 transactions and 4 deposit postings each),
reads it back in the relay's order, then applies it to the live read models as the
projectors do: frames of FRAME events, each through the runner's apply path (one
transaction with its tracking rows and checkpoint), for each projection in turn, on
one connection planned as the projectors' pools are (postgres.INDEX_PLANS). The events
are decoded before the clock starts: this measures applying, not reading (nor taking a
connection from a pool). Prints, per frame size, events/s and the CPU per event of
this process and of its PostgreSQL backend.

    python -m tests.bench.projector_apply [--events N] [--frames 50,2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg

from projections.registry import PROJECTIONS
from projections.runner import apply_in_transaction
from shared.events import Envelope
from shared.store import postgres
from shared.store.event_store import Cursor, read_after
from shared.store.postgres import connect
from tests.bench.replay import write_history
from tests.bench.service_process import DEFAULT_AMQP, DEFAULT_POSTGRES
from tests.support.environment import Environment, create_environment, drop_environment

EVENTS = 200_000
FRAMES = "50,2000"


async def history(env: Environment, events: int) -> list[Envelope]:
    await write_history(env, events)
    conn = await connect(env.admin_url)
    try:
        cursor, read = Cursor(), []
        while batch := await read_after(conn, cursor, limit=10_000):
            read += [event for _, event in batch]
            cursor = batch[-1][0]
    finally:
        await conn.close()
    return read


def backend_cpu_s(pid: int) -> float:
    """A PostgreSQL backend's user + system CPU so far (it runs on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def apply_frames(
    conn: asyncpg.Connection, events: list[Envelope], frame: int
) -> str:
    """Apply the events frame by frame to both projections; the figures."""
    for name, value in postgres.INDEX_PLANS.items():  # as a projector's session
        await conn.execute(f"SET {name} = {value}")
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    started, cpu, backend = time.perf_counter(), time.process_time(), backend_cpu_s(pid)
    for start in range(0, len(events), frame):
        for projection in PROJECTIONS.values():
            async with conn.transaction():
                await apply_in_transaction(
                    conn, projection, events[start : start + frame]
                )
    seconds = time.perf_counter() - started
    own = (time.process_time() - cpu) / len(events) * 1e6
    server = (backend_cpu_s(pid) - backend) / len(events) * 1e6
    return (
        f"frames of {frame:,}: {len(events):,} events in {seconds:.1f} s"
        f" ({len(events) / seconds:,.0f} events/s, both projections);"
        f" CPU per event: Python {own:.1f} us, PostgreSQL {server:.1f} us"
    )


async def bench(args: argparse.Namespace) -> int:
    frames = [int(frame) for frame in args.frames.split(",")]
    for frame in frames:
        env = await create_environment(args.postgres, args.amqp, tag="bench")
        try:
            events = await history(env, args.events)
            conn = await connect(env.admin_url)
            try:
                print(await apply_frames(conn, events, frame))
            finally:
                await conn.close()
        finally:
            await drop_environment(env)
    print(f"machine load {os.getloadavg()[0]:.2f}/{os.cpu_count()} cores")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.projector_apply")
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--frames", default=FRAMES, help="frame sizes, comma-separated")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="superuser URL")
    parser.add_argument("--amqp", default=DEFAULT_AMQP)
    return asyncio.run(bench(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
