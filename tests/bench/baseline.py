"""The postings benchmark's baseline: one-row-per-transaction INSERTs from asyncpg at
the same concurrency and for the same time, into a copy of the events table (same
columns, constraints and indexes) with a real posting event's payload, metadata and
hash; the figure the service's postings/s is divided by."""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import asyncpg

from tests.bench.cpu_use import Watch, measured
from tests.bench.figures import Phase
from tests.bench.service_process import POLL_S

CONNECT_DEADLINE_S = 10.0
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
