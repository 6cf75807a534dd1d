"""Fair use between tenants (issue 9, part 5), through the real HTTP API on the real
PostgreSQL: each limit is set low, reached for real, and answered 429 (or 503 for the
pool) with Retry-After in the Laravel shape, while other tenants are still served."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import asyncpg

from services.http.edge import POOL
from tests.integration.scenarios import wait_until
from tests.security.conftest import ServiceWith
from tests.support.environment import Environment
from tests.support.refusals import ADDRESS_LIMIT, KEY_LIMIT, WORK_LIMIT

CATEGORIES = "/api/v3/clients/categories"
SUMMARY_AS_OF = "/api/v3/clients/summary?as_of=2030-01-01"
UNAUTHENTICATED = {"message": "Unauthenticated."}


async def answer(response: aiohttp.ClientResponse) -> tuple[int, Any, str | None]:
    """(status, JSON body, Retry-After) of a response."""
    return response.status, await response.json(), response.headers.get("Retry-After")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_key_over_its_rate_gets_429_then_is_served_after_retry_after(
    service_with: ServiceWith, business: dict[str, Any]
) -> None:
    """With 1 request/s and a burst of 2 per key, a third request at once is 429 with
    Retry-After: 1 in the Laravel shape, and the same request after waiting that long
    is served again."""
    async with service_with(key_requests_per_s=1.0, key_requests_burst=2) as client:
        headers = business["headers"]
        statuses = [
            (await client.get(CATEGORIES, headers=headers)).status for _ in range(2)
        ]
        assert statuses == [200, 200]
        refused = await answer(await client.get(CATEGORIES, headers=headers))
        assert refused == (429, KEY_LIMIT, "1")
        await asyncio.sleep(int(refused[2] or 0))  # the protocol: wait Retry-After
        assert (await client.get(CATEGORIES, headers=headers)).status == 200


@asynccontextmanager
async def fresh_buckets(
    pool: asyncpg.Pool, kind: str, *subjects: str
) -> AsyncIterator[None]:
    """These shared buckets full (their rows deleted: an absent bucket is full) before
    and after: the tests share the session's database, and a bucket one test left
    empty (the failed authentications of 127.0.0.1) would refuse another's requests."""
    delete = "DELETE FROM fair_use_buckets WHERE kind = $1 AND subject = ANY($2)"
    await pool.execute(delete, kind, list(subjects))
    try:
        yield
    finally:
        await pool.execute(delete, kind, list(subjects))


async def test_a_flood_of_bad_keys_is_refused_for_its_address_and_no_other(
    service_with: ServiceWith, business: dict[str, Any], pool: asyncpg.Pool
) -> None:
    """Five bad keys from 127.0.0.1 (the burst) are 401s, the sixth request is 429
    without a key lookup (a good key from that address is refused too), while
    127.0.0.2 is still answered: 200 for the good key and 401 for a bad one (both
    addresses' buckets deleted before and after)."""
    settings = {"auth_failures_per_s": 0.01, "auth_failures_burst": 5}
    async with (
        fresh_buckets(pool, "address", "127.0.0.1", "127.0.0.2"),
        service_with(**settings) as client,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        ) as other,
    ):
        bad = bearer("lk_not-a-key")
        flood = [
            await answer(await client.get(CATEGORIES, headers=bad)) for _ in "12345"
        ]
        assert flood == [(401, UNAUTHENTICATED, None)] * 5
        refused = await answer(await client.get(CATEGORIES, headers=bad))
        assert refused == (429, ADDRESS_LIMIT, "100")
        good = business["headers"]
        same_address = await answer(await client.get(CATEGORIES, headers=good))
        assert same_address == (429, ADDRESS_LIMIT, "100")
        url = client.server.make_url(CATEGORIES)
        async with other.get(url, headers=good) as response:
            assert response.status == 200
        async with other.get(url, headers=bad) as response:
            assert await answer(response) == (401, UNAUTHENTICATED, None)


@asynccontextmanager
async def audit_held(
    environment: Environment, client: Any, business: dict[str, Any]
) -> AsyncIterator[asyncio.Task[aiohttp.ClientResponse]]:
    """An audit verify of `business` running, held on a lock in PostgreSQL (the
    verify reads projection_tracking, which a transaction here has locked)."""
    admin = await asyncpg.connect(environment.admin_url)
    try:
        lock = admin.transaction()
        await lock.start()
        await admin.execute("LOCK TABLE projection_tracking IN ACCESS EXCLUSIVE MODE")
        task = asyncio.ensure_future(
            client.get("/api/v3/audit/verify", headers=business["headers"])
        )

        async def verify_waits() -> bool:
            # pg_stat_activity is read once per transaction unless cleared.
            await admin.execute("SELECT pg_stat_clear_snapshot()")
            waiting: int = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                " current_database() AND wait_event_type = 'Lock' AND query LIKE"
                " 'SELECT projection, stream_id, version FROM projection_tracking%'"
            )
            return waiting == 1

        await wait_until(verify_waits, "the audit to wait on the lock")
        try:
            yield task
        finally:
            await lock.rollback()
    finally:
        await admin.close()


async def test_expensive_work_beyond_the_business_bound_gets_429(
    service_with: ServiceWith,
    environment: Environment,
    business: dict[str, Any],
    other_business: dict[str, Any],
) -> None:
    """With one expensive request per business, an audit verify held running on a
    database lock makes the business's as_of summary, as_of client, export, import
    and aged receivables (JSON and workbook) 429 with Retry-After: 1, another
    business's as_of is still served, and once the lock goes the audit answers 200
    and the as_of summary is served again."""
    async with service_with(expensive_work_per_business_max=1) as client:
        headers = business["headers"]
        async with audit_held(environment, client, business) as audit:
            form = aiohttp.FormData()
            form.add_field("customers", b"PK", filename="c.xlsx")
            refusals = [
                await answer(await client.get(SUMMARY_AS_OF, headers=headers)),
                await answer(
                    await client.get(
                        "/api/v3/clients/1?as_of=2030-01-01", headers=headers
                    )
                ),
                await answer(
                    await client.get(f"/api/v3/clients/clients-print/{business['bid']}")
                ),
                await answer(
                    await client.post(
                        "/api/v3/clients/import", data=form, headers=headers
                    )
                ),
                await answer(
                    await client.get("/api/v3/clients/aging", headers=headers)
                ),
                await answer(
                    await client.get("/api/v3/clients/aging.xlsx", headers=headers)
                ),
            ]
            assert refusals == [(429, WORK_LIMIT, "1")] * 6
            other = await client.get(SUMMARY_AS_OF, headers=other_business["headers"])
            assert other.status == 200
        verified = await audit
        assert (verified.status, (await verified.json())["ok"]) == (200, True)
        assert (await client.get(SUMMARY_AS_OF, headers=headers)).status == 200


async def test_the_key_less_export_is_bounded_per_bid(
    service_with: ServiceWith,
    business: dict[str, Any],
    other_business: dict[str, Any],
) -> None:
    """With two exports per bid in a burst (one every 100 s after), the third export
    of the same bid is 429 with Retry-After: 100, and another bid is still served."""
    settings = {"export_per_bid_per_s": 0.01, "export_per_bid_burst": 2}
    async with service_with(**settings) as client:
        path = f"/api/v3/clients/clients-print/{business['bid']}"
        assert [(await client.get(path)).status for _ in "12"] == [200, 200]
        refused = await answer(await client.get(path))
        message = "Too many exports of this business; slow down"
        assert refused == (429, {"message": message}, "100")
        other = f"/api/v3/clients/clients-print/{other_business['bid']}"
        assert (await client.get(other)).status == 200


async def test_an_exhausted_pool_answers_503_with_retry_after(
    service_with: ServiceWith, business: dict[str, Any]
) -> None:
    """With a pool of 2 connections and a 0.2 s acquire timeout, both connections
    held (for real, from the app's own pool) make a request 503 with Retry-After: 1
    instead of waiting; once they are released the same request is served."""
    settings = {"api_pool_size_max": 2, "pool_acquire_timeout_s": 0.2}
    async with service_with(**settings) as client:
        pool = client.app[POOL]
        async with pool.acquire(timeout=5) as first, pool.acquire(timeout=5) as second:
            assert first is not second
            refused = await answer(
                await client.get(CATEGORIES, headers=business["headers"])
            )
        message = "The service is busy (no database connection free in 0.2 s); retry"
        assert refused == (503, {"message": message}, "1")
        served = await client.get(CATEGORIES, headers=business["headers"])
        assert served.status == 200
