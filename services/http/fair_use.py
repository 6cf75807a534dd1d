"""Fair use between tenants: what one API key, one client address or one business may
take of the service before it is answered 429 with Retry-After. Every limit holds for
the whole service, however many API processes serve it (README "Several API
processes"): N processes never let N times as much through.

- Requests per API key: a token bucket per key (`key_requests_per_s`, burst
  `key_requests_burst`), checked by the auth middleware after the key is known.
- Failed authentications per client address: each 401 (and each unknown export bid)
  takes a token from the address's bucket (`auth_failures_per_s`, burst
  `auth_failures_burst`); a failure with no token left is answered 429 instead. An
  address a process knows to be out of tokens is answered 429 before its key is
  looked up, so a flood of bad keys costs no database query, and other addresses,
  which have buckets of their own, are answered as before.
- Exports per bid: the key-less export has a bucket per business
  (`export_per_bid_per_s`, burst `export_per_bid_burst`).
- Expensive work per business: at most `expensive_work_per_business_max` imports,
  exports, audit verifies, `as_of` folds and reports of one business run at once in
  the service; one more is answered 429 at once rather than queued.

The buckets are rows in PostgreSQL that each process leases tokens from in small
batches (services/http/shared_buckets.py: no query while a process holds a token);
a business's slots for expensive work are advisory locks on the process's claims
session (services/http/session_locks.py), freed by PostgreSQL when a process dies.
Each process's tables are bounded (`rate_table_entries_max` subjects each, least
recently used dropped).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
from aiohttp import web

from services.http.session_locks import SessionLocks, lock_key
from services.http.shared_buckets import SharedBuckets, pool_lease
from services.http.token_bucket import Rate, retry_after_s
from shared.config import Settings
from shared.errors import TooManyRequests

# A running piece of expensive work gives no clue when it will end; a second is when
# a retry is worth trying (the client backs off further on each 429).
WORK_RETRY_AFTER_S = 1


class FairUse:
    """The process's share of the service's buckets and slots (one per app, under
    FAIR_USE); `connect` gives it the pool and the claims once they are open."""

    def __init__(
        self, settings: Settings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        entries_max = settings.rate_table_entries_max
        lease = pool_lease(self._pool)
        self.keys = SharedBuckets(
            "key",
            Rate(settings.key_requests_per_s, settings.key_requests_burst),
            entries_max,
            lease,
        )
        self.failures = SharedBuckets(
            "address",
            Rate(settings.auth_failures_per_s, settings.auth_failures_burst),
            entries_max,
            lease,
        )
        self.exports = SharedBuckets(
            "export",
            Rate(settings.export_per_bid_per_s, settings.export_per_bid_burst),
            entries_max,
            lease,
        )
        self.work_max = settings.expensive_work_per_business_max
        # business_id -> the slots (lock keys) this process holds
        self.running: dict[int, list[int]] = {}
        self._clock = clock
        self._connected: tuple[asyncpg.Pool, SessionLocks] | None = None

    def connect(self, pool: asyncpg.Pool, locks: SessionLocks) -> None:
        self._connected = (pool, locks)

    def _pool(self) -> asyncpg.Pool:
        assert self._connected is not None, "FairUse.connect comes first"
        return self._connected[0]

    async def admit_key(self, key_id: int) -> None:
        """Take a token for one request with this API key, or refuse it (429)."""
        wait_s = await self.keys.take(key_id, self._clock)
        if wait_s > 0:
            raise TooManyRequests(
                "Too many requests with this API key; slow down",
                retry_after_s(wait_s),
            )

    def refuse_failing_address(self, address: str) -> None:
        """Refuse (429) an address this process knows has used its failed
        authentications up, before anything is looked up for it."""
        wait_s = self.failures.wait_s(address, self._clock())
        if wait_s > 0:
            raise _failing_address(wait_s)

    async def note_failure(self, address: str) -> None:
        """Count one failed authentication (a 401, an unknown bid) for the address;
        with none left in the service's bucket it is answered 429 instead."""
        wait_s = await self.failures.take(address, self._clock)
        if wait_s > 0:
            raise _failing_address(wait_s)

    async def admit_export(self, business_id: int) -> None:
        """Take a token for one key-less export of this business, or refuse it."""
        wait_s = await self.exports.take(business_id, self._clock)
        if wait_s > 0:
            raise TooManyRequests(
                "Too many exports of this business; slow down", retry_after_s(wait_s)
            )

    @asynccontextmanager
    async def expensive_work(self, business_id: int) -> AsyncIterator[None]:
        """Hold one of the business's slots for expensive work in the service (an
        advisory lock), or refuse (429)."""
        assert self._connected is not None, "FairUse.connect comes first"
        locks = self._connected[1]
        mine = self.running.setdefault(business_id, [])
        try:
            slot = await self._free_slot(locks, business_id, mine)
        except BaseException:
            if not mine:
                del self.running[business_id]
            raise
        if slot is None:
            if not mine:
                del self.running[business_id]
            raise TooManyRequests(
                f"This business already has {self.work_max} imports, exports, audits,"
                " as_of queries or reports running; retry when one has finished",
                WORK_RETRY_AFTER_S,
            )
        try:
            yield
        finally:
            mine.remove(slot)
            locks.unlock(slot)
            if not mine:
                del self.running[business_id]

    async def _free_slot(
        self, locks: SessionLocks, business_id: int, mine: list[int]
    ) -> int | None:
        """The first of the business's slots no process holds, now held (in `mine`
        while it is asked, so that this process never asks for one twice)."""
        for index in range(self.work_max):
            key = lock_key("expensive_work", business_id, index)
            if key in mine:
                continue
            mine.append(key)
            try:
                taken = await locks.try_lock(key)
            except BaseException:
                mine.remove(key)
                raise
            if taken:
                return key
            mine.remove(key)
        return None


def _failing_address(wait_s: float) -> TooManyRequests:
    return TooManyRequests(
        "Too many failed authentications from this address; slow down",
        retry_after_s(wait_s),
    )


FAIR_USE = web.AppKey("fair_use", FairUse)


def fair_use_of(request: web.Request) -> FairUse:
    return request.app[FAIR_USE]


def client_address(request: web.Request) -> str:
    """The peer's address (behind a proxy, the proxy's: its clients share it)."""
    return request.remote or ""
