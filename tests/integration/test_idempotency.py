"""Idempotency-Key: a retry replays the first response and writes nothing; a reused key
with another request is refused; concurrent duplicates never make two effects."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from services.command_api.appender import Appender
from services.command_api.submissions import IdempotencyClaim
from shared import commands as c
from shared import events as e
from tests.integration.scenarios import (
    blocked_on_lock,
    id_of,
    key_row_held,
    metadata,
    render_client_id,
    wait_until,
)
from tests.support.environment import Environment

Headers = dict[str, str]
Service = TestClient[web.Request, web.Application]


def _keyed(business: dict[str, object], key: str) -> Headers:
    headers = business["headers"]
    assert isinstance(headers, dict)
    return {**headers, "Idempotency-Key": key}


async def _event_count(pool: asyncpg.Pool, stream_id: str) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM events WHERE stream_id = $1", stream_id
    )
    return count


async def _new_client(service: Service, business: dict[str, object]) -> int:
    response = await service.post(
        "/api/v3/clients",
        json={"business_name": "Keyed Ltd"},
        headers=_keyed(business, str(uuid.uuid4())),
    )
    assert response.status == 201
    client_id = (await response.json())["id"]
    assert isinstance(client_id, int)
    return client_id


async def test_a_retry_with_the_same_key_replays_the_response_and_writes_nothing(
    service: Service, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """A debit posted twice with one Idempotency-Key answers the second time with the
    same status, body bytes and position, marked as replayed, and the client's stream
    still holds one posting."""
    client_id = await _new_client(service, business)
    path = f"/api/v3/clients/{client_id}/transactions"
    headers = _keyed(business, f"debit-{uuid.uuid4()}")
    body = {"type": "debit", "amount": "250.75", "reference": "INV-1"}
    first = await service.post(path, json=body, headers=headers)
    first_body = await first.read()
    assert first.status == 201

    again = await service.post(path, json=body, headers=headers)

    assert again.status == 201
    assert await again.read() == first_body
    assert again.headers["X-Ledger-Position"] == first.headers["X-Ledger-Position"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await _event_count(pool, e.client_stream(client_id)) == 2
    client = await (
        await service.get(f"/api/v3/clients/{client_id}", headers=headers)
    ).json()
    assert client["balance"] == "250.75"


async def test_the_same_key_with_another_request_is_refused_and_writes_nothing(
    service: Service, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """A key first used for a debit of 10.00 is refused with 422 for a debit of 10.01
    and for the same body on another client's path, and neither writes an event."""
    first_client = await _new_client(service, business)
    other_client = await _new_client(service, business)
    headers = _keyed(business, f"reused-{uuid.uuid4()}")
    path = f"/api/v3/clients/{first_client}/transactions"
    first = await service.post(
        path, json={"type": "debit", "amount": "10.00"}, headers=headers
    )
    assert first.status == 201

    changed = await service.post(
        path, json={"type": "debit", "amount": "10.01"}, headers=headers
    )
    elsewhere = await service.post(
        f"/api/v3/clients/{other_client}/transactions",
        json={"type": "debit", "amount": "10.00"},
        headers=headers,
    )

    refusal = {
        "message": "The given data was invalid.",
        "errors": {
            "Idempotency-Key": [
                "This Idempotency-Key was already used with a different request"
            ]
        },
    }
    assert (changed.status, await changed.json()) == (422, refusal)
    assert (elsewhere.status, await elsewhere.json()) == (422, refusal)
    assert await _event_count(pool, e.client_stream(first_client)) == 2
    assert await _event_count(pool, e.client_stream(other_client)) == 1


async def test_concurrent_duplicates_over_http_make_one_effect(
    service: Service, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """Eight identical keyed debits sent at once answer 201 (the same body every time)
    or 409 "in progress"; the stream gains exactly one posting, and a later retry
    replays the first body."""
    client_id = await _new_client(service, business)
    path = f"/api/v3/clients/{client_id}/transactions"
    headers = _keyed(business, f"burst-{uuid.uuid4()}")
    body = {"type": "debit", "amount": "99.99"}

    async def send() -> tuple[int, bytes]:
        response = await service.post(path, json=body, headers=headers)
        return response.status, await response.read()

    answers = await asyncio.gather(*(send() for _ in range(8)))

    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {201, 409} and statuses[201] >= 1, answers
    created = {raw for status, raw in answers if status == 201}
    assert len(created) == 1
    in_progress = {raw for status, raw in answers if status == 409}
    assert in_progress <= {
        b'{"message":"A request with this Idempotency-Key is in progress"}'
    }
    assert await _event_count(pool, e.client_stream(client_id)) == 2
    status, raw = await send()
    assert (status, {raw}) == (201, created)
    assert await _event_count(pool, e.client_stream(client_id)) == 2


async def test_concurrent_duplicates_in_two_processes_make_one_effect(
    environment: Environment,
    pool: asyncpg.Pool,
    admin: asyncpg.Connection,
    appenders: Callable[[], Appender],
    business: dict[str, object],
) -> None:
    """Two appenders (two processes) create a client with the same key at once; a test
    transaction holds the key's row until one has inserted its client.created event
    and waits on that row, and the other waits behind it on the commit-order lock
    (migration 0011), then lets go: the first commits, the other's key insert finds
    the row taken, its batch rolls back and retries as a replay, so both answer the
    same client and the business gains exactly one client."""
    business_id = id_of(business)
    key = f"create-{uuid.uuid4()}"
    claim = IdempotencyClaim(key, "same-request")
    command = c.CreateClient(business_id=business_id, business_name="Once Ltd")
    first, second = appenders(), appenders()
    async with key_row_held(environment.admin_url, business_id, key) as release:
        answers = [
            asyncio.ensure_future(
                appender.submit(command, metadata(key), render_client_id, claim)
            )
            for appender in (first, second)
        ]

        async def both_waiting() -> bool:
            on_key = await blocked_on_lock(admin, "WITH answers AS")  # the keeping
            # A creation's events come with its client's key (event_store.py).
            on_order = await blocked_on_lock(admin, "WITH keys AS")
            return (on_key, on_order) == (1, 1)

        await wait_until(both_waiting, "both processes to wait on the key's row")
        await release()
        results = await asyncio.gather(*answers)

    assert results[0].body == results[1].body
    assert sorted(result.replayed for result in results) == [False, True]
    created = await pool.fetch(
        "SELECT stream_id FROM events"
        " WHERE business_id = $1 AND type = 'client.created'",
        business_id,
    )
    assert [row["stream_id"] for row in created] == [
        e.client_stream(int(results[0].body))
    ]


async def test_a_first_answer_of_202_is_replayed_as_202(
    service: TestClient, business: dict[str, object]
) -> None:
    """A keyed command answered 202 (Prefer: respond-async) is retried with the same
    key: the retry answers 202 with the identical body, not the 201 it was stored as
    at commit time."""
    headers = {**business["headers"], "Idempotency-Key": "async-once"}
    created = await service.post(
        "/api/v3/clients", json={"business_name": "Later"}, headers=business["headers"]
    )
    client_id = (await created.json())["id"]
    path = f"/api/v3/clients/{client_id}/transactions"
    body = {"type": "debit", "amount": "5.00"}

    first = await service.post(
        path, json=body, headers={**headers, "Prefer": "respond-async"}
    )
    retry = await service.post(path, json=body, headers=headers)

    assert (first.status, retry.status) == (202, 202)
    assert await retry.read() == await first.read()
    assert retry.headers["Idempotent-Replayed"] == "true"
