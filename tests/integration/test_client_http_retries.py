"""shared/client's LedgerClient against the real service, through the proxy:
retries reuse the Idempotency-Key, so a write happens once, and they are bounded."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared import events as e
from shared.client import LedgerClient, NewClient, Unavailable
from tests.integration.ledger_client_proxy import FAST, Proxy


async def test_a_lost_response_is_retried_with_the_same_key_and_writes_once(
    proxied: LedgerClient, proxy: tuple[Proxy, str]
) -> None:
    """Proves the automatic retry is safe: the proxy forwards the first posting, the
    service commits it, and the proxy drops the connection; the client sends the same
    request with the same Idempotency-Key, gets the first response replayed, and the
    client's history holds exactly one transaction.posted, with that id and key."""
    client_id = (await proxied.create_client(NewClient(business_name="R"))).body.id
    proxy[0].seen.clear()
    proxy[0].faults.append("drop")
    posted = await proxied.post_transaction(client_id, "debit", Decimal("150.00"))

    path = f"/api/v3/clients/{client_id}/transactions"
    assert proxy[0].seen == [("POST", path, posted.idempotency_key)] * 2
    assert posted.replayed is True
    assert posted.status == 201
    assert posted.body.amount == Decimal("150")
    history = await proxied.client_events(client_id)
    postings = [
        event for event in history if isinstance(event.payload, e.TransactionPosted)
    ]
    assert len(postings) == 1
    assert postings[0].payload.transaction_id == posted.body.id  # type: ignore[union-attr]
    assert postings[0].metadata.idempotency_key == posted.idempotency_key
    client = await proxied.get_client(client_id)
    assert client.unformated_balance == Decimal("150")


@pytest.mark.parametrize("fault", ["unavailable", "in_progress"])
async def test_a_503_or_an_in_progress_409_is_retried_with_the_same_key(
    proxied: LedgerClient, proxy: tuple[Proxy, str], fault: str
) -> None:
    """Proves a 503 (Retry-After honoured) and a 409 "in progress" are retried with
    the same key, and the write happens once (the first attempt never reached the
    service, so the answer is not a replay)."""
    proxy[0].faults.append(fault)
    created = await proxied.create_client(NewClient(business_name=f"Retry {fault}"))
    assert proxy[0].seen == [("POST", "/api/v3/clients", created.idempotency_key)] * 2
    assert (created.status, created.replayed) == (201, False)
    names = [client.business_name for client in await proxied.list_clients()]
    assert names == [f"Retry {fault}"]


async def test_retries_are_bounded_and_end_in_the_typed_error(
    proxied: LedgerClient, proxy: tuple[Proxy, str]
) -> None:
    """Proves the client gives up after `attempts_max` attempts (all with one key)
    and raises Unavailable with the service's Retry-After; nothing was written."""
    proxy[0].faults.extend(["unavailable"] * FAST.attempts_max)
    with pytest.raises(Unavailable) as unavailable:
        await proxied.create_client(NewClient(business_name="Never"))
    assert unavailable.value.retry_after_s == 0
    keys = {key for _, _, key in proxy[0].seen}
    assert len(proxy[0].seen) == FAST.attempts_max and len(keys) == 1
    assert await proxied.list_clients() == []


async def test_a_caller_key_is_used_and_a_repeat_is_a_replay(api: LedgerClient) -> None:
    """Proves a caller's own Idempotency-Key is sent as given: the same command
    twice with it answers the first body, replayed, and creates one client."""
    first = await api.create_client(
        NewClient(business_name="Once"), idempotency_key="order-17"
    )
    again = await api.create_client(
        NewClient(business_name="Once"), idempotency_key="order-17"
    )
    assert (first.idempotency_key, again.idempotency_key) == ("order-17", "order-17")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.body == first.body
    assert len(await api.list_clients()) == 1
