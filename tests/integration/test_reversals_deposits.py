"""Reversals of deposits over the real HTTP API: the deposit never goes below zero,
whether a reversal comes after a use or races one."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg

from shared import events as e
from tests.integration.reversal_calls import (
    ROUNDS,
    Service,
    business_headers,
    client_body,
    get_json,
    new_client,
    new_posting,
    post_json,
)
from tests.integration.scenarios import cents, stream_versions
from tests.support.environment import Environment
from tests.support.service import http_client


async def test_a_deposit_reversal_that_would_make_the_deposit_negative_is_refused(
    service: Service, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """100.00 received, 60.00 used: reversing the 100.00 top-up is a 422 and writes
    nothing; reversing the 60.00 use answers 201 (a debit, deposit_after 100.00);
    then the top-up's reversal, sent with an empty body, answers 201 with
    deposit_after 0. The deposits list
    shows the four lines with reversed and reversal_of, and the client's deposit is
    exactly 0."""
    headers = business_headers(business)
    client_id = await new_client(service, headers)
    base = f"/api/v3/clients/{client_id}/deposits"
    top_up = await new_posting(
        service, client_id, "deposits", {"type": "debit", "amount": 100}, headers
    )
    used = await new_posting(
        service, client_id, "deposits", {"type": "credit", "amount": 60}, headers
    )
    versions = await stream_versions(pool, e.client_stream(client_id))

    refused = await post_json(service, f"{base}/{top_up}/reverse", {}, headers)

    assert refused == (
        422,
        {
            "message": "The given data was invalid.",
            "errors": {
                "amount": ["The amount to reverse may not be greater than the deposit."]
            },
        },
    )
    assert await stream_versions(pool, e.client_stream(client_id)) == versions
    status, back = await post_json(
        service, f"{base}/{used}/reverse", {"reason": "Refunded"}, headers
    )
    assert status == 201, back
    assert (back["type"], cents(back["amount"]), cents(back["deposit_after"])) == (
        "debit",
        6_000,
        10_000,
    )
    assert (back["reversal_of"], back["description"]) == (used, "Refunded")
    status, gone = await post_json(service, f"{base}/{top_up}/reverse", None, headers)
    assert status == 201, gone
    assert cents(gone["deposit_after"]) == 0
    listed = await get_json(service, base, headers)
    assert isinstance(listed, list)
    assert [
        (line["id"], line["type"], line["reversed"], line["reversal_of"])
        for line in listed
    ] == [
        (top_up, "debit", True, None),
        (used, "credit", True, None),
        (back["id"], "debit", False, used),
        (gone["id"], "credit", False, top_up),
    ]
    client = await client_body(service, client_id, headers)
    assert cents(client["deposit_amount"]) == 0


async def test_a_top_up_reversal_racing_a_deposit_use_never_goes_below_zero(
    service: Service,
    environment: Environment,
    business: dict[str, object],
) -> None:
    """Round after round, a fresh client receives 100.00, then its reversal and a
    use of 60.00 are fired at once through two API instances: only one of them fits,
    so exactly one answers 201 and the other 422, and the client's deposit ends at 0
    (the reversal won) or 40.00 (the use won), never below zero."""
    headers = business_headers(business)
    async with http_client(environment.settings) as second:
        for _ in range(ROUNDS):
            client_id = await new_client(service, headers)
            base = f"/api/v3/clients/{client_id}/deposits"
            top_up = await new_posting(
                service,
                client_id,
                "deposits",
                {"type": "debit", "amount": 100},
                headers,
            )
            reversal, use = await asyncio.gather(
                post_json(service, f"{base}/{top_up}/reverse", {}, headers),
                post_json(second, base, {"type": "credit", "amount": 60}, headers),
            )
            assert Counter([reversal[0], use[0]]) == {201: 1, 422: 1}, (reversal, use)
            client = await client_body(service, client_id, headers)
            expected_minor = 0 if reversal[0] == 201 else 4_000
            assert cents(client["deposit_amount"]) == expected_minor
