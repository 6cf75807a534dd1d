"""The API keys this process has verified, kept so that a request costs no query for
its key: the lookup was a pooled round trip per request, about a fifth of the API's
CPU at concurrency 64.

Revocation: every change to api_keys or businesses NOTIFYs `ledger_api_keys`
(shared/store/sql/0012_api_keys_notify.sql), and the process's LISTEN connection
(services/http/projection_wait.py owns it) calls revoke_all(), which drops every
entry. PostgreSQL delivers a notification only once its commit is visible, so the
lookup after it reads the change. Three rules keep a revoked key from surviving:
- the cache is trusted only while that connection listens: before trust(), and from
  the connection's loss (distrust()) until it listens again, every lookup asks
  PostgreSQL and nothing is kept;
- a lookup in flight when a notification arrives is not kept (its generation has
  passed): it may have read the row just before the change committed;
- an entry lives ENTRY_TTL_S at most, a bound for what no notification reports (a
  connection that died without either side seeing it).

Entries are keyed by the key's hash (shared/store/api_keys.key_hash), never the key.
Unknown keys are not cached: failed authentications are bounded per address by the
fair-use tables (services/http/fair_use.py) instead.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import asyncpg

from shared.store.api_keys import Business, business_for_key_hash, key_hash

# Module constants, not settings: the bound only caps memory (an entry is ~200
# bytes), and the lifetime only matters when notifications silently stop.
KEYS_MAX = 10_000
ENTRY_TTL_S = 60.0


class ApiKeyCache:
    """Verified keys (by hash) -> their business, least recently used dropped first."""

    def __init__(self, keys_max: int = KEYS_MAX, ttl_s: float = ENTRY_TTL_S) -> None:
        self._entries: OrderedDict[str, tuple[Business, float]] = OrderedDict()
        self._keys_max = keys_max
        self._ttl_s = ttl_s
        self._listener: asyncpg.Connection | None = None
        self._generation = 0

    @property
    def trusted(self) -> bool:
        """Whether entries are kept and served: a listening connection is open."""
        return self._listener is not None and not self._listener.is_closed()

    def __len__(self) -> int:
        return len(self._entries)

    def trust(self, listener: asyncpg.Connection) -> None:
        """`listener` now LISTENs on `ledger_api_keys`: keep lookups from here on
        (as long as it stays open). Whatever was looked up before is not kept."""
        self.revoke_all()
        self._listener = listener

    def distrust(self) -> None:
        """The LISTEN connection is lost: drop every entry and keep none until
        trust() is called again."""
        self._listener = None
        self.revoke_all()

    def revoke_all(self, *_notification: object) -> None:
        """Drop every entry (a key or business changed), including the lookups in
        flight. Takes a notification's arguments, so it is a listener callback."""
        self._generation += 1
        self._entries.clear()

    async def business(self, pool: asyncpg.Pool, key: str) -> Business | None:
        """The business of an active key (None for an unknown or revoked one), from
        the cache when trusted, else from PostgreSQL."""
        hashed = key_hash(key)
        now = time.monotonic()
        entry = self._entries.get(hashed)
        if entry is not None and now < entry[1] and self.trusted:
            self._entries.move_to_end(hashed)
            return entry[0]
        generation = self._generation
        business = await business_for_key_hash(pool, hashed)
        if business is None or generation != self._generation or not self.trusted:
            self._entries.pop(hashed, None)
            return business
        self._entries[hashed] = (business, now + self._ttl_s)
        self._entries.move_to_end(hashed)
        while len(self._entries) > self._keys_max:
            self._entries.popitem(last=False)
        return business
