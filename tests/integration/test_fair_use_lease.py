"""fair_use_lease() (migration 0022), called directly on the real PostgreSQL: what a
lease grants and keeps, that the leases of one bucket never grant more than its
burst, and that a lease whose time comes before the row's (a transaction that began
earlier, a statement that waited on the row lock) neither grants a negative count nor
makes tokens.

The rate is one token in 1,000 s unless said otherwise, so that no test's own duration
refills a whole token: the counts are exact."""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import datetime

import asyncpg

from tests.integration.scenarios import blocked_on_lock, wait_until
from tests.support.environment import Environment

SLOW = 0.001
FAST = 1_000_000.0
LEASE = "SELECT granted, tokens_left FROM fair_use_lease($1, $2, $3, $4, $5)"
ROW = "SELECT tokens, updated_at, full_at FROM fair_use_buckets WHERE subject = $1"


async def lease(
    conn: asyncpg.Connection | asyncpg.Pool,
    subject: str,
    burst: int,
    wanted: int,
    rate_per_s: float = SLOW,
) -> tuple[int, float]:
    row = await conn.fetchrow(LEASE, "test", subject, rate_per_s, burst, wanted)
    assert row is not None
    return int(row["granted"]), float(row["tokens_left"])


async def test_a_new_bucket_grants_what_is_wanted_and_keeps_the_rest(
    pool: asyncpg.Pool,
) -> None:
    """A first lease of 10 from a bucket of 640 grants 10 and leaves exactly 630, and
    the row says it is full again after the 10 tokens refill (10,000 s)."""
    subject = str(uuid.uuid4())
    assert await lease(pool, subject, 640, 10) == (10, 630.0)
    row = await pool.fetchrow(ROW, subject)
    assert row is not None
    refill_s = (row["full_at"] - row["updated_at"]).total_seconds()
    assert (row["tokens"], round(refill_s)) == (630.0, 10_000)


async def test_the_leases_of_one_bucket_never_grant_more_than_its_burst(
    pool: asyncpg.Pool,
) -> None:
    """65 leases of 10 from a bucket of 640 grant 10 sixty-four times, then 0, with
    less than one token left."""
    subject = str(uuid.uuid4())
    grants = [await lease(pool, subject, 640, 10) for _ in range(65)]
    assert [granted for granted, _ in grants] == [10] * 64 + [0]
    assert 0.0 <= grants[-1][1] < 1.0


async def test_a_lease_in_a_transaction_older_than_the_row_makes_no_tokens(
    environment: Environment, pool: asyncpg.Pool
) -> None:
    """A transaction opened first (its now() earlier) leases after another session
    emptied the bucket and committed: it is granted 0, not a negative count, with
    less than a token left, and the row's updated_at does not move back."""
    subject = str(uuid.uuid4())
    older = await asyncpg.connect(environment.settings.database_url)
    try:
        async with older.transaction():
            await older.execute("SELECT now()")  # the transaction has its time
            assert await lease(pool, subject, 10, 10) == (10, 0.0)
            emptied_at = await _updated_at(pool, subject)
            granted, left = await lease(older, subject, 10, 10)
        assert (granted, math.floor(left)) == (0, 0) and left >= 0.0
        assert await _updated_at(pool, subject) >= emptied_at
    finally:
        await older.close()


async def test_a_lease_that_waited_on_the_row_lock_makes_no_tokens(
    environment: Environment, pool: asyncpg.Pool, admin: asyncpg.Connection
) -> None:
    """At a million tokens a second, burst 10: a lease that starts while another
    transaction holds the bucket's row, and is granted the row only after that
    transaction emptied it again (the refill up to the burst) and committed, is
    granted 0 with 0 left, not a negative count: its statement read the clock before
    it waited, earlier than the row's time, and that counts as no time passed (the
    time since is the next lease's)."""
    subject = str(uuid.uuid4())
    holder = await asyncpg.connect(environment.settings.database_url)
    try:
        async with holder.transaction():
            assert await lease(holder, subject, 10, 10, FAST) == (10, 0.0)
            waiting = asyncio.ensure_future(lease(pool, subject, 10, 10, FAST))
            await wait_until(
                lambda: blocked_on_lock(admin, "SELECT granted, tokens_left"),
                "the second lease to wait on the row",
            )
            assert await lease(holder, subject, 10, 10, FAST) == (10, 0.0)
        assert await waiting == (0, 0.0)
    finally:
        await holder.close()


async def _updated_at(pool: asyncpg.Pool, subject: str) -> datetime:
    row = await pool.fetchrow(ROW, subject)
    assert row is not None
    return row["updated_at"]  # type: ignore[no-any-return]
