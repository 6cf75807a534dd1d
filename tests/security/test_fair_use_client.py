"""The Python client (shared/client) against the real service with a per-key rate
limit: a 429 is retried after its Retry-After within the RetryPolicy, and raised as
TooManyRequests when the attempts run out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from shared.client import LedgerClient, RetryPolicy, TooManyRequests
from shared.response_bodies import SummaryBody
from tests.security.conftest import ServiceWith

# Fast backoff: four attempts take well under a second unless Retry-After is honoured.
FAST = RetryPolicy(attempts_max=4, backoff_first_s=0.01, backoff_max_s=0.05)
ONCE = RetryPolicy(attempts_max=1)
ONE_A_SECOND = {"key_requests_per_s": 1.0, "key_requests_burst": 1}


async def test_the_client_waits_retry_after_on_429_and_then_succeeds(
    service_with: ServiceWith, business: dict[str, Any]
) -> None:
    """With one request a second per key, two calls at once both succeed: the second
    was answered 429 with Retry-After: 1, and only a wait of that second (not the
    policy's 10-50 ms backoff, whose four attempts would all be refused) gets it
    through."""
    async with service_with(**ONE_A_SECOND) as service:
        base_url = str(service.make_url("")).rstrip("/")
        async with LedgerClient(base_url, business["api_key"], retry=FAST) as client:
            first = await client.summary()
            second = await client.summary()
    empty = SummaryBody(
        total_deposits=Decimal(0),
        customer_count=0,
        archived_customers=0,
        unarchived_customers=0,
        total_balance=Decimal(0),
    )
    assert (first, second) == (empty, empty)  # a business without clients, twice


async def test_the_client_raises_too_many_requests_when_attempts_run_out(
    service_with: ServiceWith, business: dict[str, Any]
) -> None:
    """With one attempt allowed, the second call at once raises TooManyRequests
    carrying the 429, the service's message and its Retry-After of 1 s."""
    async with service_with(**ONE_A_SECOND) as service:
        base_url = str(service.make_url("")).rstrip("/")
        async with LedgerClient(base_url, business["api_key"], retry=ONCE) as client:
            await client.summary()
            with pytest.raises(TooManyRequests) as raised:
                await client.summary()
    assert (raised.value.status, raised.value.retry_after_s) == (429, 1.0)
    assert raised.value.message == "Too many requests with this API key; slow down"
