"""SharedBuckets (services/http/shared_buckets.py) leasing from the real PostgreSQL,
with the process's clock in the test's hands: a burst of 640 leases 10 tokens at a
time, requests waiting on a lease share it, leased tokens expire a second after
their grant, a subject out of tokens is refused until a whole lease has refilled
without a statement per refusal, and one subject never has two leases in flight.

The database refills one token in 1,000 s, so that no test's own duration refills a
whole token: the counts are exact."""

from __future__ import annotations

import asyncio
import math
import uuid

import asyncpg

from services.http.shared_buckets import (
    LEASE_LIFETIME_S,
    SharedBuckets,
    lease_size,
    pool_lease,
)
from services.http.token_bucket import Rate

SLOW = 0.001
LARGE = Rate(SLOW, 640)  # leases of 10
SMALL = Rate(SLOW, 10)  # leases of 1
KIND = "test"


class Clock:
    """The process's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now_s = 1_000.0

    def __call__(self) -> float:
        return self.now_s


class CountedLease:
    """The real lease (one fair_use_lease statement on the pool), counted: how many
    ran, and the most in flight at once."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._lease = pool_lease(lambda: pool)
        self.calls, self.in_flight, self.in_flight_max = 0, 0, 0

    async def __call__(
        self, kind: str, subject: str, rate: Rate, wanted: int
    ) -> tuple[int, float]:
        self.calls += 1
        self.in_flight += 1
        self.in_flight_max = max(self.in_flight_max, self.in_flight)
        try:
            return await self._lease(kind, subject, rate, wanted)
        finally:
            self.in_flight -= 1


async def tokens_in_row(pool: asyncpg.Pool, subject: str) -> int:
    """The whole tokens the subject's bucket holds in PostgreSQL."""
    tokens = await pool.fetchval(
        "SELECT tokens FROM fair_use_buckets WHERE kind = $1 AND subject = $2",
        KIND,
        subject,
    )
    return math.floor(tokens)


async def test_a_large_burst_is_leased_ten_tokens_at_a_time(
    pool: asyncpg.Pool,
) -> None:
    """With a burst of 640 (leases of 10), 25 requests are all taken with 3 lease
    statements, and the bucket's row holds 640 - 30 tokens."""
    lease, subject = CountedLease(pool), str(uuid.uuid4())
    buckets = SharedBuckets(KIND, LARGE, 100, lease)
    assert lease_size(LARGE) == 10
    taken = [await buckets.take(subject, Clock()) for _ in range(25)]
    assert (taken, lease.calls) == ([0.0] * 25, 3)
    assert await tokens_in_row(pool, subject) == 610


async def test_requests_waiting_on_a_lease_share_it(pool: asyncpg.Pool) -> None:
    """Ten requests at once for a subject this process holds nothing of are all taken
    with one lease of 10 statement, the others waiting on it."""
    lease, subject = CountedLease(pool), str(uuid.uuid4())
    buckets = SharedBuckets(KIND, LARGE, 100, lease)
    clock = Clock()
    taken = await asyncio.gather(*(buckets.take(subject, clock) for _ in range(10)))
    assert (taken, lease.calls) == ([0.0] * 10, 1)
    assert await tokens_in_row(pool, subject) == 630


async def test_leased_tokens_expire_a_second_after_their_grant(
    pool: asyncpg.Pool,
) -> None:
    """A lease's 9 unspent tokens still serve just before a second has passed on the
    process's clock; at a second, the next request leases anew and the 9 left over
    are lost (the row holds 640 - 20), never handed back."""
    lease, subject = CountedLease(pool), str(uuid.uuid4())
    buckets, clock = SharedBuckets(KIND, LARGE, 100, lease), Clock()
    assert await buckets.take(subject, clock) == 0.0
    clock.now_s += LEASE_LIFETIME_S - 0.001
    assert (await buckets.take(subject, clock), lease.calls) == (0.0, 1)
    clock.now_s += 0.001
    assert (await buckets.take(subject, clock), lease.calls) == (0.0, 2)
    assert await tokens_in_row(pool, subject) == 620


async def test_a_subject_out_of_tokens_is_refused_until_a_whole_lease_refills(
    pool: asyncpg.Pool,
) -> None:
    """Once the 640 tokens are spent (64 leases), the next request is refused for the
    time 10 tokens take to refill (about 10,000 s, not the 1,000 s of one token);
    requests 1,000 s later on the process's clock are still refused without a lease
    statement, for the 9,000 s left."""
    lease, subject = CountedLease(pool), str(uuid.uuid4())
    buckets, clock = SharedBuckets(KIND, LARGE, 100, lease), Clock()
    assert [await buckets.take(subject, clock) for _ in range(640)] == [0.0] * 640
    refused = await buckets.take(subject, clock)
    assert (9_000 < refused <= 10_000, lease.calls) == (True, 65)
    clock.now_s += 1_000.0
    later = [await buckets.take(subject, clock) for _ in range(100)]
    assert {round(refused - wait_s) for wait_s in later} == {1_000}
    assert lease.calls == 65


async def test_one_subject_never_has_two_leases_in_flight(pool: asyncpg.Pool) -> None:
    """Six requests at once with leases of one token each: every one is taken, with
    six lease statements, never two of them in flight at once (a request that waited
    on three leases used to start its own beside another's)."""
    lease, subject = CountedLease(pool), str(uuid.uuid4())
    buckets = SharedBuckets(KIND, SMALL, 100, lease)
    clock = Clock()
    taken = await asyncio.gather(*(buckets.take(subject, clock) for _ in range(6)))
    assert taken == [0.0] * 6
    assert (lease.calls, lease.in_flight_max) == (6, 1)
    assert await tokens_in_row(pool, subject) == 4
