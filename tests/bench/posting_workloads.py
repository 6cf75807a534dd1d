"""The postings benchmark's load: writers posting 1.00 debits to random clients on the
default path until a deadline (each with a fresh Idempotency-Key in the keyed phase),
each posting's latency recorded in the phase, and the projection lag probe (a 202
with `Prefer: respond-async`, then the time until a GET with X-Ledger-Min-Position
answers 200)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence

import aiohttp

from tests.bench.counting_client import Ledger
from tests.bench.cpu_use import Watch, measured
from tests.bench.figures import Phase


async def post_for(
    ledger: Ledger,
    clients: Sequence[int],
    deadline: float,
    phase: Phase,
    seed: int,
    keyed: bool = False,
    personal: bool = False,
) -> None:
    """Post to random clients on the default path until the deadline."""
    rng = random.Random(seed)
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        posted = await ledger.post(rng.choice(clients), keyed=keyed, personal=personal)
        if posted is None:
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
    keyed: bool = False,
    personal: bool = False,
) -> Phase:
    phase = Phase()
    with measured(phase, watch):
        deadline = time.perf_counter() + seconds
        tasks = [
            post_for(ledger, clients, deadline, phase, n, keyed, personal)
            for n in range(concurrency)
        ]
        if lags is not None:
            tasks.append(probe_lag(ledger, clients, deadline, lags))
        await asyncio.gather(*tasks)
    return phase
