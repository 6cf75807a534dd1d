"""The review's findings: the read-your-writes waiter outlives an exhausted pool, a
killed fold worker does not break audits and `as_of` for good, and a client that
never reads an export does not hold its business's expensive-work slot."""

from __future__ import annotations

import os
import signal
from typing import Any

from aiohttp.test_utils import TestClient

from shared.http_edge import POOL
from shared.projection_wait import WAITER
from tests.integration.scenarios import wait_until
from tests.security.conftest import ServiceWith
from tests.security.test_fair_use_workers import is_alive, workers_of


async def test_a_command_after_an_exhausted_pool_is_answered_201(
    service: TestClient, service_with: ServiceWith, business: dict[str, Any]
) -> None:
    """Proves the read-your-writes waiter survives PoolExhausted: with both
    connections of a two-connection pool held past the 0.2 s acquire timeout while a
    waiter waits, its checks fail; once they are released a new command (projectors
    run, `service`) is answered 201, not 202 after the full wait."""
    settings = {"api_pool_size_max": 2, "pool_acquire_timeout_s": 0.2}
    async with service_with(**settings) as client:
        pool, waiter = client.app[POOL], client.app[WAITER]
        async with pool.acquire(timeout=5), pool.acquire(timeout=5):
            # Never applied: the waiter keeps checking, and every check waits for
            # a connection past the acquire timeout.
            assert await waiter.wait_for_stream("client-424242", 1, 0.6) is False
        created = await client.post(
            "/api/v3/clients",
            json={"business_name": "After the pool"},
            headers=business["headers"],
        )
        assert created.status == 201, await created.text()


async def test_a_killed_fold_worker_costs_one_503_then_audits_are_served(
    service_with: ServiceWith, business: dict[str, Any]
) -> None:
    """Proves a fold worker SIGKILLed (as the OOM killer would) does not break audit
    verify for good: with one fold worker, the audit after the kill is answered 503
    with Retry-After (the broken pool is replaced) and the next one 200 with the
    same report as before the kill, where a plain pool answered 500 for ever."""
    others = set(workers_of(os.getpid()))  # other apps' pools in this session
    async with service_with(fold_processes=1) as client:
        headers = business["headers"]
        before = await client.get("/api/v3/audit/verify", headers=headers)
        assert before.status == 200, await before.text()
        report = await before.json()
        [worker] = set(workers_of(os.getpid())) - others
        os.kill(worker, signal.SIGKILL)

        async def worker_gone() -> bool:
            return not is_alive(worker)

        await wait_until(worker_gone, "the fold worker to die")
        lost = await client.get("/api/v3/audit/verify", headers=headers)
        assert (lost.status, lost.headers.get("Retry-After")) == (503, "1")
        assert await lost.json() == {"message": "A worker process was lost; retry"}
        after = await client.get("/api/v3/audit/verify", headers=headers)
        assert after.status == 200, await after.text()
        assert await after.json() == report
