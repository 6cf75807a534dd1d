"""What holds across API processes (issue 15), with two real `ledger api` processes on
the session's database: an Idempotency-Key in flight in one is 409 in the other until
its holder dies; the fair-use buckets and the expensive-work bound count for the
whole service, not per process; a slot held by a killed process is freed."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.e2e.api_processes import PAUSE_DEADLINE_S, ApiProcess, ApiProcesses
from tests.e2e.deadlines import wait_until
from tests.e2e.ledger_api import Api
from tests.e2e.supervisor import LedgerService
from tests.support.refusals import ADDRESS_LIMIT, KEY_LIMIT, WORK_LIMIT

IN_PROGRESS = {"message": "A request with this Idempotency-Key is in progress"}
# Refills so slow (one token in 1,000 s) that no token comes back during a test.
SLOW = "0.001"


@pytest.fixture
def api_processes(tmp_path: Path) -> Iterator[ApiProcesses]:
    processes = ApiProcesses(tmp_path)
    yield processes
    processes.stop_all()


@asynccontextmanager
async def session(
    api: ApiProcess, address: str = "127.0.0.1"
) -> AsyncIterator[aiohttp.ClientSession]:
    """A client of one process, connecting from `address` (any of 127.0.0.0/8)."""
    async with aiohttp.ClientSession(
        base_url=api.base_url,
        connector=aiohttp.TCPConnector(local_addr=(address, 0)),
        timeout=aiohttp.ClientTimeout(total=60),
    ) as http:
        yield http


async def send(
    http: aiohttp.ClientSession, method: str, path: str, **options: Any
) -> tuple[int, Any]:
    async with http.request(method, path, **options) as response:
        return response.status, json.loads(await response.read() or b"null")


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


@asynccontextmanager
async def fresh_address(pool: asyncpg.Pool, address: str) -> AsyncIterator[None]:
    """The address's failed-authentication bucket full (its row deleted) before and
    after."""
    delete = "DELETE FROM fair_use_buckets WHERE kind = 'address' AND subject = $1"
    await pool.execute(delete, address)
    try:
        yield
    finally:
        await pool.execute(delete, address)


async def test_a_key_in_flight_in_one_process_is_409_in_another_until_its_holder_dies(
    ledger: LedgerService,
    business: dict[str, Any],
    api: Api,
    admin_pool: asyncpg.Pool,
    api_processes: ApiProcesses,
) -> None:
    """A keyed deposit held in process A before its commit makes the same key at
    process B answer 409 (the exact body); once A is SIGKILLed, B answers the key 201
    (retried until the claim is gone), a retry at B replays it, and the store holds
    exactly one deposit event and one idempotency row for it."""
    client_id = (await api.create_client())["id"]
    api_key, key = str(business["api_key"]), str(uuid.uuid4())
    path = f"/api/v3/clients/{client_id}/deposits"
    body = {"type": "debit", "amount": "5.00"}
    first = await api_processes.start(
        ledger.environment, "a", {"LEDGER_TEST_PAUSE_AT": "api.before_commit"}
    )
    second = await api_processes.start(ledger.environment, "b")
    headers = bearer(api_key, **{"Idempotency-Key": key})
    async with session(first) as at_first, session(second) as at_second:
        held = asyncio.ensure_future(
            send(at_first, "POST", path, json=body, headers=headers)
        )
        await first.wait_for_log("test pause at api.before_commit")
        assert await send(at_second, "POST", path, json=body, headers=headers) == (
            409,
            IN_PROGRESS,
        )
        first.kill()
        with pytest.raises(aiohttp.ClientError):
            await held
        answers: list[tuple[int, Any]] = []

        async def accepted() -> bool:
            answers.append(
                await send(at_second, "POST", path, json=body, headers=headers)
            )
            return answers[-1][0] != 409

        await wait_until(accepted, PAUSE_DEADLINE_S, "B takes the key")
        assert {status for status, _ in answers[:-1]} <= {409}
        status, created = answers[-1]
        assert status == 201
        replay = await send(at_second, "POST", path, json=body, headers=headers)
        assert replay == (201, created)
    events = await admin_pool.fetchval(
        "SELECT count(*) FROM events WHERE type = 'deposit.posted'"
        " AND metadata->>'idempotency_key' = $1",
        key,
    )
    rows = await admin_pool.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE business_id = $1 AND key = $2",
        business["business_id"],
        key,
    )
    assert (events, rows) == (1, 1)


async def test_a_key_s_burst_and_an_address_s_failures_hold_for_the_whole_service(
    ledger: LedgerService,
    business: dict[str, Any],
    api_processes: ApiProcesses,
    admin_pool: asyncpg.Pool,
) -> None:
    """With a burst of 20 per key and 6 failed authentications per address (refilling
    one token in 1,000 s), 40 requests with one key alternating between two
    processes give exactly 20 answers 200 then 20 answers 429, not 40 answers 200;
    12 bad keys from one address alternating give exactly 6 answers 401, then 429.
    The address's bucket is deleted before and after (the session's database is
    shared: an empty bucket would refuse another test's requests)."""
    limits = {
        "LEDGER_KEY_REQUESTS_PER_S": SLOW,
        "LEDGER_KEY_REQUESTS_BURST": "20",
        "LEDGER_AUTH_FAILURES_PER_S": SLOW,
        "LEDGER_AUTH_FAILURES_BURST": "6",
    }
    first = await api_processes.start(ledger.environment, "a", limits)
    second = await api_processes.start(ledger.environment, "b", limits)
    address = f"127.{random.randrange(1, 255)}.{random.randrange(256)}.2"
    good, bad = bearer(str(business["api_key"])), bearer("lk_not-a-key")
    categories = "/api/v3/clients/categories"
    async with (
        fresh_address(admin_pool, address),
        session(first, address) as at_first,
        session(second, address) as at_b,
    ):
        pair = (at_first, at_b)
        keyed = [
            await send(pair[n % 2], "GET", categories, headers=good) for n in range(40)
        ]
        failed = [
            await send(pair[n % 2], "GET", categories, headers=bad) for n in range(12)
        ]
    assert [status for status, _ in keyed] == [200] * 20 + [429] * 20
    assert {json.dumps(body) for _, body in keyed[20:]} == {json.dumps(KEY_LIMIT)}
    assert [status for status, _ in failed] == [401] * 6 + [429] * 6
    assert [body for _, body in failed[6:]] == [ADDRESS_LIMIT] * 6


async def _verify_waits(admin: asyncpg.Connection) -> bool:
    """Whether an audit verify waits on the lock this test holds."""
    await admin.execute("SELECT pg_stat_clear_snapshot()")
    waiting: int = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query LIKE"
        " 'SELECT projection, stream_id, version FROM projection_tracking%'"
    )
    return waiting == 1


async def test_expensive_work_is_bounded_for_the_service_and_freed_by_a_killed_holder(
    ledger: LedgerService,
    business: dict[str, Any],
    api_processes: ApiProcesses,
) -> None:
    """With one expensive request per business, an audit verify held running in
    process A (waiting on a lock taken here) makes the same business's as_of summary
    at process B answer 429 (the exact body); once A is SIGKILLed, B serves it
    (retried until PostgreSQL has released A's slot)."""
    bound = {"LEDGER_EXPENSIVE_WORK_PER_BUSINESS_MAX": "1"}
    first = await api_processes.start(ledger.environment, "a", bound)
    second = await api_processes.start(ledger.environment, "b", bound)
    headers = bearer(str(business["api_key"]))
    as_of = "/api/v3/clients/summary?as_of=2030-01-01"
    admin = await asyncpg.connect(ledger.environment.admin_url)
    try:
        lock = admin.transaction()
        await lock.start()
        await admin.execute("LOCK TABLE projection_tracking IN ACCESS EXCLUSIVE MODE")
        async with session(first) as at_first, session(second) as at_second:
            held = asyncio.ensure_future(
                send(at_first, "GET", "/api/v3/audit/verify", headers=headers)
            )
            await wait_until(
                lambda: _verify_waits(admin), PAUSE_DEADLINE_S, "A's verify runs"
            )
            refused = await send(at_second, "GET", as_of, headers=headers)
            assert refused == (429, WORK_LIMIT)
            first.kill()
            held.cancel()
            await lock.rollback()

            async def served() -> bool:
                status, _ = await send(at_second, "GET", as_of, headers=headers)
                return status == 200

            await wait_until(served, PAUSE_DEADLINE_S, "B serves once A is gone")
    finally:
        await admin.close()
