"""What `make bench-imports` sends while an import runs, every 50 ms: the importing
business's GETs and client-creating POSTs, another business's postings, and GET
/healthz during the export; each prober counts its answers by status and keeps the
slowest."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import msgspec

PROBE_INTERVAL_S = 0.05


async def probe_health(http: aiohttp.ClientSession, stop: asyncio.Event) -> float:
    """The slowest GET /healthz, one every 50 ms, while `stop` is unset."""
    slowest = 0.0
    while not stop.is_set():
        started = time.perf_counter()
        async with http.get("/healthz") as response:
            await response.read()
        slowest = max(slowest, time.perf_counter() - started)
        await asyncio.sleep(PROBE_INTERVAL_S)
    return slowest


class Probe(msgspec.Struct):
    """One prober's answers: how many of each status, and the slowest."""

    statuses: dict[int, int] = msgspec.field(default_factory=dict)
    slowest_s: float = 0.0

    def text(self) -> str:
        counts = ", ".join(
            f"{n} x {status}" for status, n in sorted(self.statuses.items())
        )
        return f"{counts or 'none'}, slowest {self.slowest_s * 1000:.0f} ms"


async def timed(probe: Probe, request: Any) -> None:
    started = time.perf_counter()
    async with request as response:
        await response.read()
        probe.statuses[response.status] = probe.statuses.get(response.status, 0) + 1
    probe.slowest_s = max(probe.slowest_s, time.perf_counter() - started)


async def probe(
    http: aiohttp.ClientSession, headers: dict[str, str], stop: asyncio.Event
) -> tuple[Probe, Probe]:
    """The importing business's GETs and client-creating POSTs while `stop` is unset
    (its own commands may wait behind its import: per-business order first)."""
    gets, posts = Probe(), Probe()
    while not stop.is_set():
        await timed(gets, http.get("/api/v3/clients/summary", headers=headers))
        body = {"business_name": "Probe"}
        await timed(posts, http.post("/api/v3/clients", json=body, headers=headers))
        await asyncio.sleep(PROBE_INTERVAL_S)
    return gets, posts


async def probe_other(
    http: aiohttp.ClientSession, headers: dict[str, str], stop: asyncio.Event
) -> Probe:
    """Another business's postings (a debit of 1.00 to its own client) while `stop`
    is unset: each should answer 201, read-your-writes within its bound."""
    async with http.post(
        "/api/v3/clients", json={"business_name": "Other"}, headers=headers
    ) as response:
        client_id = (await response.json())["id"]
    posts = Probe()
    path = f"/api/v3/clients/{client_id}/transactions"
    while not stop.is_set():
        body = {"type": "debit", "amount": "1.00"}
        await timed(posts, http.post(path, json=body, headers=headers))
        await asyncio.sleep(PROBE_INTERVAL_S)
    return posts
