"""Fair use between tenants: what one API key, one client address or one business may
take of a process before it is answered 429 with Retry-After.

- Requests per API key: a token bucket per key (`key_requests_per_s`, burst
  `key_requests_burst`), checked by the auth middleware after the key is known.
- Failed authentications per client address: each 401 (and each unknown export bid)
  takes a token from the address's bucket (`auth_failures_per_s`, burst
  `auth_failures_burst`). An address with none left is answered 429 before its key is
  looked up, so a flood of bad keys costs no database query, and other addresses,
  which have buckets of their own, are answered as before.
- Exports per bid: the key-less export has a bucket per business
  (`export_per_bid_per_s`, burst `export_per_bid_burst`).
- Expensive work per business: at most `expensive_work_per_business_max` imports,
  exports, audit verifies and `as_of` folds of one business run at once in a process;
  one more is answered 429 at once rather than queued.

Every table is bounded (`rate_table_entries_max` buckets each, least recently used
dropped). The limits hold per API process: N processes behind a balancer let N times
as much through.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aiohttp import web

from services.http.token_bucket import BucketTable, Rate, retry_after_s
from shared.config import Settings
from shared.errors import TooManyRequests

# A running piece of expensive work gives no clue when it will end; a second is when
# a retry is worth trying (the client backs off further on each 429).
WORK_RETRY_AFTER_S = 1


class FairUse:
    """The process's buckets and counters (one per app, under FAIR_USE)."""

    def __init__(
        self, settings: Settings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        entries_max = settings.rate_table_entries_max
        self.keys = BucketTable(
            Rate(settings.key_requests_per_s, settings.key_requests_burst), entries_max
        )
        self.failures = BucketTable(
            Rate(settings.auth_failures_per_s, settings.auth_failures_burst),
            entries_max,
        )
        self.exports = BucketTable(
            Rate(settings.export_per_bid_per_s, settings.export_per_bid_burst),
            entries_max,
        )
        self.work_max = settings.expensive_work_per_business_max
        self.running: dict[int, int] = {}  # business_id -> expensive work running
        self._clock = clock

    def admit_key(self, key_id: int) -> None:
        """Take a token for one request with this API key, or refuse it (429)."""
        wait_s = self.keys.take(key_id, self._clock())
        if wait_s > 0:
            raise TooManyRequests(
                "Too many requests with this API key; slow down",
                retry_after_s(wait_s),
            )

    def refuse_failing_address(self, address: str) -> None:
        """Refuse (429) an address whose failed authentications used its bucket up,
        before anything is looked up for it."""
        wait_s = self.failures.wait_s(address, self._clock())
        if wait_s > 0:
            raise TooManyRequests(
                "Too many failed authentications from this address; slow down",
                retry_after_s(wait_s),
            )

    def note_failure(self, address: str) -> None:
        """Count one failed authentication (a 401, an unknown bid) for the address."""
        self.failures.take(address, self._clock())

    def admit_export(self, business_id: int) -> None:
        """Take a token for one key-less export of this business, or refuse it."""
        wait_s = self.exports.take(business_id, self._clock())
        if wait_s > 0:
            raise TooManyRequests(
                "Too many exports of this business; slow down", retry_after_s(wait_s)
            )

    @contextmanager
    def expensive_work(self, business_id: int) -> Iterator[None]:
        """Hold one of the business's slots for expensive work, or refuse (429)."""
        running = self.running.get(business_id, 0)
        if running >= self.work_max:
            raise TooManyRequests(
                f"This business already has {running} imports, exports, audits,"
                " as_of queries or reports running; retry when one has finished",
                WORK_RETRY_AFTER_S,
            )
        self.running[business_id] = running + 1
        try:
            yield
        finally:
            left = self.running[business_id] - 1
            if left:
                self.running[business_id] = left
            else:
                del self.running[business_id]


FAIR_USE = web.AppKey("fair_use", FairUse)


def fair_use_of(request: web.Request) -> FairUse:
    return request.app[FAIR_USE]


def client_address(request: web.Request) -> str:
    """The peer's address (behind a proxy, the proxy's: its clients share it)."""
    return request.remote or ""
