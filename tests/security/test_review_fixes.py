"""The review's findings: the read-your-writes waiter outlives an exhausted pool, a
killed fold worker does not break audits and `as_of` for good, and a client that
never reads an export does not hold its business's expensive-work slot."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from shared.http_edge import POOL
from shared.projection_wait import WAITER
from tests.security.conftest import ServiceWith


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
