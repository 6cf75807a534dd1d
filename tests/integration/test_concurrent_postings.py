"""Concurrent postings over HTTP on one client: no lost update, no broken invariant."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from shared import events as e
from tests.integration.scenarios import cents, decoded, stream_versions

Headers = dict[str, str]
Service = TestClient[web.Request, web.Application]


def _headers(business: dict[str, object]) -> Headers:
    headers = business["headers"]
    assert isinstance(headers, dict)
    return headers


async def _new_client(service: Service, headers: Headers) -> int:
    response = await service.post(
        "/api/v3/clients", json={"business_name": "Concurrent Ltd"}, headers=headers
    )
    assert response.status == 201, await response.text()
    client_id = (await response.json())["id"]
    assert isinstance(client_id, int)
    return client_id


async def _post(
    service: Service, path: str, body: dict[str, str], headers: Headers
) -> tuple[int, dict[str, object]]:
    response = await service.post(path, json=body, headers=headers)
    return response.status, decoded(await response.read())


async def test_fifty_concurrent_debits_on_one_client_all_count(
    service: Service, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """Fifty debits of 12.34 posted at once to one client all answer 201 with distinct
    transaction ids and running balances 12.34 to 617.00; the client shows exactly
    617.00 and its stream holds versions 1 to 51 with no gap."""
    headers = _headers(business)
    client_id = await _new_client(service, headers)
    path = f"/api/v3/clients/{client_id}/transactions"

    answers = await asyncio.gather(
        *(
            _post(service, path, {"type": "debit", "amount": "12.34"}, headers)
            for _ in range(50)
        )
    )

    assert [status for status, _ in answers] == [201] * 50, answers
    ids = {body["id"] for _, body in answers}
    assert len(ids) == 50
    running = sorted(cents(body["balance_after"]) for _, body in answers)
    assert running == [1_234 * n for n in range(1, 51)]
    client = decoded(
        await (
            await service.get(f"/api/v3/clients/{client_id}", headers=headers)
        ).read()
    )
    assert cents(client["unformated_balance"]) == 61_700
    assert (client["balance"], client["total_debit"], client["total_credit"]) == (
        "617.00",
        "617.00",
        "0.00",
    )
    stream_id = e.client_stream(client_id)
    assert await stream_versions(pool, stream_id) == list(range(1, 52))
    stored = await pool.fetch(
        "SELECT (payload->>'transaction_id')::bigint AS id FROM events"
        " WHERE stream_id = $1 AND type = 'transaction.posted'",
        stream_id,
    )
    assert {row["id"] for row in stored} == ids


async def test_deposit_never_goes_negative_under_concurrent_credits(
    service: Service, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """After a deposit of 100.00, twenty credits of 10.00 posted at once: exactly ten
    answer 201 (deposit_after 90.00 down to 0.00) and ten answer 422 with the amount
    error; the deposit ends at exactly 0 with eleven deposit events in the stream."""
    headers = _headers(business)
    client_id = await _new_client(service, headers)
    path = f"/api/v3/clients/{client_id}/deposits"
    status, _ = await _post(
        service, path, {"type": "debit", "amount": "100.00"}, headers
    )
    assert status == 201

    answers = await asyncio.gather(
        *(
            _post(service, path, {"type": "credit", "amount": "10.00"}, headers)
            for _ in range(20)
        )
    )

    assert Counter(status for status, _ in answers) == {201: 10, 422: 10}
    accepted = [body for status, body in answers if status == 201]
    refused = [body for status, body in answers if status == 422]
    assert sorted(cents(body["deposit_after"]) for body in accepted) == [
        1_000 * n for n in range(10)
    ]
    assert (
        refused
        == [
            {
                "message": "The given data was invalid.",
                "errors": {
                    "amount": ["The amount may not be greater than the deposit."]
                },
            }
        ]
        * 10
    )
    client = decoded(
        await (
            await service.get(f"/api/v3/clients/{client_id}", headers=headers)
        ).read()
    )
    assert cents(client["deposit_amount"]) == 0
    count = await pool.fetchval(
        "SELECT count(*) FROM events WHERE stream_id = $1 AND type = 'deposit.posted'",
        e.client_stream(client_id),
    )
    assert count == 11
