"""shared/client's LedgerClient against the real service: what the client refuses
before sending, and the service's refusals raised as typed exceptions, never
retried."""

from __future__ import annotations

from decimal import Decimal

import pytest
from aiohttp.test_utils import TestClient

from shared.client import (
    ClientChanges,
    Conflict,
    LedgerClient,
    NewClient,
    NotFound,
    PreconditionFailed,
    Unauthenticated,
    ValidationError,
)
from tests.integration.ledger_client_proxy import FAST, Proxy, base_url


async def test_a_float_amount_is_refused_before_anything_is_sent(
    proxied: LedgerClient, proxy: tuple[Proxy, str]
) -> None:
    """Proves a float (or a bool) amount raises TypeError in the client: the proxy
    receives no request at all for it."""
    client_id = (await proxied.create_client(NewClient(business_name="F"))).body.id
    before = list(proxy[0].seen)
    with pytest.raises(TypeError, match="not float"):
        await proxied.post_transaction(client_id, "debit", 0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not float"):
        await proxied.post_deposit(client_id, "debit", 10.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not bool"):
        await proxied.post_transaction(client_id, "debit", True)
    assert proxy[0].seen == before
    assert [event.type for event in await proxied.client_events(client_id)] == [
        "client.created"
    ]


async def test_a_validation_failure_raises_the_field_errors_and_is_not_retried(
    proxied: LedgerClient, proxy: tuple[Proxy, str]
) -> None:
    """Proves a 422 becomes ValidationError carrying the service's field errors, sent
    exactly once (a business refusal is never retried), and writes nothing."""
    client_id = (await proxied.create_client(NewClient(business_name="V"))).body.id
    proxy[0].seen.clear()
    with pytest.raises(ValidationError) as refused:
        await proxied.post_transaction(
            client_id, "debit", Decimal("1.001"), date="2024-13-01"
        )
    assert refused.value.status == 422
    assert refused.value.message == "The given data was invalid."
    assert refused.value.errors == {
        "amount": ["The amount must have at most two decimals."],
        "date": ["The date is not a valid date."],
    }
    with pytest.raises(ValidationError) as blank:
        await proxied.create_client(NewClient(business_name="   "))
    assert blank.value.errors == {
        "business_name": ["The business name field is required."]
    }
    assert [(method, path) for method, path, _ in proxy[0].seen] == [
        ("POST", f"/api/v3/clients/{client_id}/transactions"),
        ("POST", "/api/v3/clients"),
    ]
    assert [event.type for event in await proxied.client_events(client_id)] == [
        "client.created"
    ]


async def test_refusals_raise_their_own_exception_types(
    api: LedgerClient, service: TestClient
) -> None:
    """Proves 404, 401, 409 and 412 each raise their own LedgerApiError subclass
    with the service's status and message."""
    with pytest.raises(NotFound) as missing:
        await api.get_client(987654321)
    assert (missing.value.status, missing.value.message) == (
        404,
        "Client 987654321 not found",
    )
    with pytest.raises(NotFound):
        await api.post_transaction(987654321, "debit", 1)
    async with LedgerClient(base_url(service), "lk_wrong", retry=FAST) as stranger:
        with pytest.raises(Unauthenticated) as unknown:
            await stranger.list_clients()
    assert (unknown.value.status, unknown.value.message) == (401, "Unauthenticated.")

    await api.create_category("Wholesale")
    with pytest.raises(Conflict) as duplicate:
        await api.create_category(" wholesale ")
    assert duplicate.value.status == 409

    client_id = (await api.create_client(NewClient(business_name="V1"))).body.id
    versioned = await api.get_client_versioned(client_id)
    assert versioned.version == 1
    updated = await api.update_client(
        client_id, ClientChanges(last_name="Mensah"), if_match=versioned.version
    )
    assert (updated.status, updated.body.last_name) == (200, "Mensah")
    with pytest.raises(PreconditionFailed) as stale:
        await api.update_client(
            client_id, ClientChanges(last_name="Late"), if_match=versioned.version
        )
    assert stale.value.status == 412
    assert (await api.get_client(client_id)).last_name == "Mensah"
