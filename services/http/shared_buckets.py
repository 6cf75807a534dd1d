"""Token buckets shared by every API process: the rows of `fair_use_buckets`
(migration 0022), leased a few tokens at a time and spent in memory.

A request whose process holds a token for its subject (an API key, an address, a
bid) costs no query. When it holds none, one statement (fair_use_lease) takes up to
`lease_size` tokens from the subject's row, refilled by the database's clock, so the
tokens every process was granted together never exceed what the one bucket allows:
N processes cannot let N times as much through. A bucket with nothing to grant
answers with what it has left; the process then refuses the subject locally until a
whole lease has refilled, and at least REFUSED_MIN_S (refused_s: no query per
refused request, since nothing but time refills a bucket, and at most one lease
statement per subject and process every REFUSED_MIN_S while it stays over its rate).

What a lease costs the bound:
- a process holds at most `lease_size` (burst / LEASE_SHARE, at least 1) unspent
  tokens of a subject; they are spent within LEASE_LIFETIME_S of their grant or
  dropped, so over any window the service admits at most burst + rate x (window +
  LEASE_LIFETIME_S) and never more than one bucket could in the same window plus a
  second's refill;
- tokens held by a process that dies, or dropped from its table, or expired, are
  lost, never handed back: the limit only gets stricter. With a burst under
  LEASE_SHARE (100 failed authentications, 10 exports) every lease is one token, so
  the service admits exactly the burst.

Each process keeps at most `entries_max` subjects (least recently used dropped, with
their tokens). The table in PostgreSQL holds only buckets not full again yet
(fair_use_prune, every PRUNE_INTERVAL_S from each process).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

import asyncpg

from services.http.token_bucket import Rate
from shared.store.postgres import CONNECTION_ERRORS

log = logging.getLogger(__name__)

LEASE_SHARE = 64  # a lease is at most this share of the burst (6,000 -> 93 tokens)
LEASE_LIFETIME_S = 1.0
# A subject out of tokens is refused locally at least this long: a key over its rate
# costs each process at most 20 lease statements a second on its row.
REFUSED_MIN_S = 0.05
PRUNE_INTERVAL_S = 60.0
_LEASE = "SELECT granted, tokens_left FROM fair_use_lease($1, $2, $3, $4, $5)"
Lease = Callable[[str, str, Rate, int], Awaitable[tuple[int, float]]]


def lease_size(rate: Rate) -> int:
    return max(1, rate.burst // LEASE_SHARE)


def refused_s(rate: Rate, left: float) -> float:
    """How long a process refuses a subject whose bucket granted nothing, with `left`
    (under one) tokens: until a whole lease has refilled, at least REFUSED_MIN_S.
    Until one token had refilled (0.3 ms at 3,000/s) made each refusal of a key over
    its rate a lease statement once its bucket was empty, each granting about one
    token: thousands of writes a second on one row, whose lock every process waited
    for with a pool connection held."""
    return max(REFUSED_MIN_S, (lease_size(rate) - left) / rate.rate_per_s)


def pool_lease(pool: Callable[[], asyncpg.Pool]) -> Lease:
    """Leases through the API's pool (a function: the pool opens after the app)."""

    async def lease(
        kind: str, subject: str, rate: Rate, wanted: int
    ) -> tuple[int, float]:
        row = await pool().fetchrow(
            _LEASE, kind, subject, rate.rate_per_s, rate.burst, wanted
        )
        assert row is not None
        return int(row["granted"]), float(row["tokens_left"])

    return lease


class _Held:
    __slots__ = ("leased_s", "leasing", "refused_until_s", "tokens")

    def __init__(self) -> None:
        self.tokens = 0
        self.leased_s = -math.inf
        self.refused_until_s = -math.inf
        self.leasing: asyncio.Future[None] | None = None


class SharedBuckets:
    """The tokens this process holds of one kind of bucket (`kind`: "key",
    "address", "export"), one entry per subject, at most `entries_max`."""

    def __init__(self, kind: str, rate: Rate, entries_max: int, lease: Lease) -> None:
        assert rate.rate_per_s > 0 and rate.burst >= 1 and entries_max >= 1
        self.kind, self.rate, self.entries_max = kind, rate, entries_max
        self._lease = lease
        self._held: OrderedDict[Hashable, _Held] = OrderedDict()

    def __len__(self) -> int:
        return len(self._held)

    def wait_s(self, subject: Hashable, now_s: float) -> float:
        """Seconds this process knows the subject must wait (0.0: none known)."""
        held = self._held.get(subject)
        return 0.0 if held is None else max(0.0, held.refused_until_s - now_s)

    async def take(self, subject: Hashable, clock: Callable[[], float]) -> float:
        """Take one token of the subject's bucket: 0.0 when taken, else the seconds
        this process refuses the subject for (nothing taken)."""
        # A lease is shared with the requests that waited on it. Each pass waits
        # for one lease in flight, never starts a second beside it (it would
        # overwrite the first's tokens), and ends in a token, a refusal or this
        # request's own lease; a lease ends with its statement (the pool's timeouts).
        while True:
            held, now_s = self._entry(subject), clock()
            if held.tokens >= 1 and now_s - held.leased_s < LEASE_LIFETIME_S:
                held.tokens -= 1
                return 0.0
            if held.refused_until_s > now_s:
                return held.refused_until_s - now_s
            if held.leasing is None:
                return await self._leased(subject, held, clock)
            await asyncio.shield(held.leasing)

    async def _leased(
        self, subject: Hashable, held: _Held, clock: Callable[[], float]
    ) -> float:
        """Lease tokens for the subject, take one of them, keep the rest."""
        leasing = held.leasing = asyncio.get_running_loop().create_future()
        try:
            granted, left = await self._lease(
                self.kind, str(subject), self.rate, lease_size(self.rate)
            )
        finally:
            held.leasing = None
            leasing.set_result(None)
        now_s = clock()
        held.tokens, held.leased_s = granted, now_s
        if granted >= 1:
            held.tokens -= 1
            return 0.0
        wait_s = refused_s(self.rate, left)
        held.refused_until_s = now_s + wait_s
        return wait_s

    def _entry(self, subject: Hashable) -> _Held:
        held = self._held.get(subject)
        if held is None:
            held = self._held[subject] = _Held()
            while len(self._held) > self.entries_max:
                self._held.popitem(last=False)  # its tokens are lost: stricter
        else:
            self._held.move_to_end(subject)
        return held


async def prune_buckets(pool: asyncpg.Pool) -> None:
    """Every PRUNE_INTERVAL_S, delete the buckets that are full again (cancelled when
    the app stops); a failure is logged and tried again next time."""
    while True:
        await asyncio.sleep(PRUNE_INTERVAL_S)
        try:
            await pool.execute("SELECT fair_use_prune()")
        except (*CONNECTION_ERRORS, asyncpg.PostgresError) as error:
            log.warning("pruning the fair-use buckets failed: %r", error)
