"""How long a process refuses a subject whose shared bucket granted nothing
(services/http/shared_buckets.refused_s): until a whole lease refills, at least
REFUSED_MIN_S, so that a key over its rate costs few lease statements."""

from __future__ import annotations

from services.http.shared_buckets import REFUSED_MIN_S, lease_size, refused_s
from services.http.token_bucket import Rate, retry_after_s

DEFAULT_KEY = Rate(rate_per_s=3_000.0, burst=6_000)  # leases of 93


def test_a_key_at_the_default_rate_is_refused_for_the_floor_not_a_third_of_a_ms() -> (
    None
):
    """At 3,000/s with 0.4 tokens left, a lease of 93 refills in 30.9 ms: the key is
    refused for the 50 ms floor (one token would take 0.2 ms), with Retry-After 1."""
    assert lease_size(DEFAULT_KEY) == 93
    assert refused_s(DEFAULT_KEY, 0.4) == REFUSED_MIN_S == 0.05
    assert retry_after_s(refused_s(DEFAULT_KEY, 0.4)) == 1


def test_a_slow_bucket_is_refused_until_its_whole_lease_refills() -> None:
    """A burst of 640 (leases of 10) refilling one token in 1,000 s, with 0.5 left:
    refused 9,500 s, the time to refill 10 tokens less what is left."""
    assert refused_s(Rate(rate_per_s=0.001, burst=640), 0.5) == 9_500.0


def test_a_lease_of_one_token_is_refused_until_that_token_refills() -> None:
    """Failed authentications at 10/s, burst 100 (leases of 1), with 0.25 left: 75 ms,
    the refill of the one token, above the floor."""
    assert refused_s(Rate(rate_per_s=10.0, burst=100), 0.25) == 0.075
