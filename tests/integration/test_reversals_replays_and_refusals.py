"""Reversals over the real HTTP API that write nothing: a keyed retry replays the
first answer, and a bad reversal is a clear 4xx."""

from __future__ import annotations

import uuid

import asyncpg

from shared import events as e
from tests.integration.reversal_calls import (
    Headers,
    Service,
    business_headers,
    new_client,
    new_posting,
    post_json,
)
from tests.integration.scenarios import decoded, stream_versions


async def test_an_idempotent_reversal_retry_replays_the_first_answer(
    service: Service, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """A reversal retried with the same Idempotency-Key answers the first 201 (same
    bytes, Idempotent-Replayed) instead of a 409, and writes nothing; the same key
    with another reason is a 422."""
    headers = business_headers(business)
    client_id = await new_client(service, headers)
    original = await new_posting(
        service, client_id, "transactions", {"type": "credit", "amount": 5}, headers
    )
    path = f"/api/v3/clients/{client_id}/transactions/{original}/reverse"
    keyed = {**headers, "Idempotency-Key": f"reverse-{uuid.uuid4()}"}
    first = await service.post(path, json={"reason": "x"}, headers=keyed)
    assert first.status == 201
    versions = await stream_versions(pool, e.client_stream(client_id))

    retry = await service.post(path, json={"reason": "x"}, headers=keyed)
    other = await service.post(path, json={"reason": "y"}, headers=keyed)

    assert (retry.status, await retry.read()) == (201, await first.read())
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert other.status == 422
    assert await stream_versions(pool, e.client_stream(client_id)) == versions


async def _entries_to_reverse_wrongly(
    service: Service, client_id: int, headers: Headers
) -> tuple[int, int, int, object]:
    """A debit of the client, already reversed; a debit of another client; a deposit
    of the client. Their ids, and the reversal's."""
    stranger = await new_client(service, headers)
    original = await new_posting(
        service, client_id, "transactions", {"type": "debit", "amount": 1}, headers
    )
    foreign = await new_posting(
        service, stranger, "transactions", {"type": "debit", "amount": 1}, headers
    )
    deposit = await new_posting(
        service, client_id, "deposits", {"type": "debit", "amount": 1}, headers
    )
    status, reversal = await post_json(
        service,
        f"/api/v3/clients/{client_id}/transactions/{original}/reverse",
        {},
        headers,
    )
    assert status == 201
    return original, foreign, deposit, reversal["id"]


async def test_bad_reversals_answer_a_clear_4xx_and_write_nothing(
    service: Service, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """Unknown ids, another client's transaction and a deposit id on the
    transactions route are 404; reversing a reversal is a 422; a reason that is not
    a string or is over 255 characters is a 422; a non-JSON body is a 415; a
    non-numeric id is a 404. The client's stream is unchanged by all of them."""
    headers = business_headers(business)
    client_id = await new_client(service, headers)
    original, foreign, deposit, reversal_id = await _entries_to_reverse_wrongly(
        service, client_id, headers
    )
    base = f"/api/v3/clients/{client_id}"
    stream_id = e.client_stream(client_id)
    versions = await stream_versions(pool, stream_id)

    answers = [
        await service.post(
            f"{base}/transactions/{path}/reverse", json=body, headers=headers
        )
        for path, body in (
            (foreign, {}),
            (deposit, {}),
            (999_999_999, {}),
            ("abc", {}),
            (reversal_id, {}),
            (original, {"reason": 5}),
            (original, {"reason": "r" * 256}),
        )
    ]
    media = await service.post(
        f"{base}/deposits/{deposit}/reverse",
        data=b"reason=x",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )

    assert [answer.status for answer in answers] == [404, 404, 404, 404, 422, 422, 422]
    bodies = [decoded(await answer.read()) for answer in answers]
    assert bodies[0] == {"message": f"Transaction {foreign} not found"}
    assert bodies[4]["errors"] == {
        "transaction_id": [
            "A reversal cannot be reversed; post a new transaction instead."
        ]
    }
    assert bodies[5]["errors"] == {"reason": ["The reason must be a string."]}
    assert bodies[6]["errors"] == {
        "reason": ["The reason may not be greater than 255 characters."]
    }
    assert media.status == 415
    assert await stream_versions(pool, stream_id) == versions
