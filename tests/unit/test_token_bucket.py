"""shared/token_bucket: the fair-use buckets, with the clock passed in."""

from __future__ import annotations

from services.http.token_bucket import BucketTable, Rate, retry_after_s


def test_a_bucket_lets_its_burst_through_then_says_how_long_to_wait() -> None:
    """Given 2 tokens/s and a burst of 3, three takes at t=0 pass, the fourth waits
    0.5 s, and at t=0.5 one more passes."""
    table = BucketTable(Rate(rate_per_s=2.0, burst=3), entries_max=10)
    assert [table.take("key", 0.0) for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]
    assert table.take("key", 0.5) == 0.0
    assert table.take("key", 0.5) == 0.5


def test_the_table_keeps_at_most_entries_max_buckets_dropping_the_oldest() -> None:
    """Given room for 2 buckets, a third key drops the least recently used one, so
    memory stays bounded however many keys an attacker invents; the dropped key
    starts again with a full bucket."""
    table = BucketTable(Rate(rate_per_s=0.001, burst=1), entries_max=2)
    assert table.take("a", 0.0) == 0.0
    assert table.take("b", 0.0) == 0.0
    assert table.take("a", 0.0) > 0  # "a" is now the most recently used
    assert table.take("c", 0.0) == 0.0
    assert len(table) == 2
    assert table.wait_s("b", 0.0) == 0.0  # "b" was dropped: a full bucket again
    assert table.wait_s("a", 0.0) > 0


def test_wait_s_neither_takes_nor_adds_a_key() -> None:
    """Peeking at a key never seen answers 0 and leaves the table empty."""
    table = BucketTable(Rate(rate_per_s=1.0, burst=1), entries_max=2)
    assert (table.wait_s("x", 0.0), len(table)) == (0.0, 0)


def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one() -> None:
    """0.01 s, 1 s and 1.2 s become Retry-After 1, 1 and 2."""
    assert [retry_after_s(s) for s in (0.01, 1.0, 1.2)] == [1, 1, 2]
