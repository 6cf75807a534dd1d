"""Token buckets keyed by who is asking, in a table of bounded size. Pure: the caller
passes the time (a monotonic clock), so the rules are tested without waiting.

A bucket holds at most `burst` tokens and refills at `rate_per_s`; each request takes
one. An empty bucket answers with the seconds until the next token, which becomes the
429's Retry-After. The table keeps at most `entries_max` buckets: when it is full, the
least recently used one is dropped. Dropping a bucket forgets what its owner spent
(it starts full again), which costs at most one burst per eviction; memory never grows
with the number of distinct keys, addresses or bids an attacker can invent.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """`rate_per_s` tokens a second, at most `burst` saved up."""

    rate_per_s: float
    burst: int


class _Bucket:
    __slots__ = ("tokens", "updated_s")

    def __init__(self, tokens: float, updated_s: float) -> None:
        self.tokens = tokens
        self.updated_s = updated_s

    def refill(self, rate: Rate, now_s: float) -> None:
        elapsed_s = max(0.0, now_s - self.updated_s)
        self.tokens = min(float(rate.burst), self.tokens + elapsed_s * rate.rate_per_s)
        self.updated_s = now_s


class BucketTable:
    """One bucket per key, at most `entries_max` of them (least recently used go)."""

    def __init__(self, rate: Rate, entries_max: int) -> None:
        assert rate.rate_per_s > 0 and rate.burst >= 1 and entries_max >= 1
        self.rate = rate
        self.entries_max = entries_max
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Hashable, now_s: float) -> float:
        """Take a token for `key`: 0.0 when there was one, else the seconds until
        there is one (nothing is taken then)."""
        bucket = self._bucket(key, now_s)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate.rate_per_s

    def wait_s(self, key: Hashable, now_s: float) -> float:
        """The seconds until `key` has a token, taking none (0.0: it has one now).
        A key never seen has a full bucket, and is not added to the table."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        bucket.refill(self.rate, now_s)
        return max(0.0, (1.0 - bucket.tokens) / self.rate.rate_per_s)

    def _bucket(self, key: Hashable, now_s: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.rate.burst), now_s)
            self._buckets[key] = bucket
            while len(self._buckets) > self.entries_max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.refill(self.rate, now_s)
        return bucket


def retry_after_s(wait_s: float) -> int:
    """A wait as Retry-After: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait_s))
