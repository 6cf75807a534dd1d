"""Idempotency keys, read-your-writes, respond-async and X-Ledger-Min-Position."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg

from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import CLIENT_FIELDS, TRANSACTION_FIELDS, invalid
from tests.e2e.supervisor import LedgerService, create_business, event_count
from tests.support.environment import READ_YOUR_WRITES_TIMEOUT_S

KEY_REUSED = invalid(
    {
        "Idempotency-Key": [
            "This Idempotency-Key was already used with a different request"
        ]
    }
)
IN_PROGRESS = {"message": "A request with this Idempotency-Key is in progress"}
NOT_YET = {"message": "The read models have not reached that position yet"}


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def test_a_retried_create_returns_the_first_answer_and_writes_nothing(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves a POST retried with its Idempotency-Key answers the first status and
    body byte for byte and appends no event, by creating a client three times."""
    body = {"business_name": "Once only", "first_name": "Evans"}
    first = await api.post("/api/v3/clients", body, headers=keyed("create-1"))
    assert first.status == 201
    after_first = await event_count(admin_pool, business["business_id"])
    for _ in range(2):
        retry = await api.post("/api/v3/clients", body, headers=keyed("create-1"))
        assert (retry.status, retry.raw) == (201, first.raw)
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert retry.headers["X-Ledger-Position"] == first.headers["X-Ledger-Position"]
    assert await event_count(admin_pool, business["business_id"]) == after_first
    assert (await api.get("/api/v3/clients")).body == [first.body]


async def test_a_retried_posting_is_counted_once(api: Api) -> None:
    """Proves a retried transaction and deposit are applied once (same ids, same
    balance_after, one row in the statement), by posting each twice with its key."""
    client = await api.create_client(business_name="Retry")
    path = f"/api/v3/clients/{client['id']}"
    body = {"type": "debit", "amount": "43228120.29"}
    first = await api.post(f"{path}/transactions", body, headers=keyed("txn"))
    again = await api.post(f"{path}/transactions", body, headers=keyed("txn"))
    assert (again.status, again.body) == (201, first.body)
    deposit = await api.post(f"{path}/deposits", body, headers=keyed("dep"))
    deposit_again = await api.post(f"{path}/deposits", body, headers=keyed("dep"))
    assert (deposit_again.status, deposit_again.body) == (201, deposit.body)
    statement = (await api.get(f"{path}/transactions")).body
    assert statement["transactions"] == [first.body]
    assert statement["total_debit"] == "43,228,120.29"
    assert statement["deposit_amount"] == Decimal("43228120.29")


async def test_a_key_reused_with_another_body_or_route_is_a_422_writing_nothing(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves the same Idempotency-Key with a different request is refused, never a
    silent second effect, by reusing one key with another body and on another route."""
    first = await api.post(
        "/api/v3/clients", {"business_name": "A"}, headers=keyed("k")
    )
    assert first.status == 201
    before = await event_count(admin_pool, business["business_id"])
    other_body = await api.post(
        "/api/v3/clients", {"business_name": "B"}, headers=keyed("k")
    )
    assert (other_body.status, other_body.body) == (422, KEY_REUSED)
    other_route = await api.post(
        f"/api/v3/clients/{first.body['id']}/transactions",
        {"type": "debit", "amount": "1"},
        headers=keyed("k"),
    )
    assert (other_route.status, other_route.body) == (422, KEY_REUSED)
    assert await event_count(admin_pool, business["business_id"]) == before
    assert [c["business_name"] for c in (await api.get("/api/v3/clients")).body] == [
        "A"
    ]


async def test_an_update_retried_later_still_answers_its_first_response(
    api: Api,
) -> None:
    """Proves a replay returns the stored first response and changes nothing even after
    the client moved on, by retrying an update after a later update."""
    client = await api.create_client(business_name="Moving")
    path = f"/api/v3/clients/{client['id']}"
    first = await api.post(path, {"first_name": "A"}, headers=keyed("update"))
    later = await api.post(path, {"first_name": "B"})
    replay = await api.post(path, {"first_name": "A"}, headers=keyed("update"))
    assert (replay.status, replay.raw) == (200, first.raw)
    assert (await api.get(path)).body == later.body


async def test_a_refused_request_stores_no_key_so_a_corrected_retry_works(
    api: Api,
) -> None:
    """Proves only committed 2xx answers are kept for a key, by sending an invalid body
    with a key, then the corrected body with the same key."""
    refused = await api.post(
        "/api/v3/clients", {"business_name": ""}, headers=keyed("fix")
    )
    assert refused.status == 422
    corrected = await api.post(
        "/api/v3/clients", {"business_name": "Fixed"}, headers=keyed("fix")
    )
    assert (corrected.status, corrected.body["business_name"]) == (201, "Fixed")


async def test_idempotency_keys_are_scoped_to_the_business(
    ledger: LedgerService, http: aiohttp.ClientSession, api: Api
) -> None:
    """Proves two businesses may use the same key independently, by creating a client
    with one key under each business's API key."""
    mine = await api.post(
        "/api/v3/clients", {"business_name": "Same"}, headers=keyed("shared")
    )
    other = await create_business(ledger)
    theirs = await Api(http, other["api_key"]).post(
        "/api/v3/clients", {"business_name": "Same"}, headers=keyed("shared")
    )
    assert mine.status == theirs.status == 201
    assert theirs.body["id"] != mine.body["id"]
    assert theirs.body["business_id"] == other["business_id"]


async def test_concurrent_duplicates_of_a_keyed_request_write_once(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves a burst of the same keyed request creates one client: each answer is the
    first response or the in-progress 409, by sending eight at once."""
    before = await event_count(admin_pool, business["business_id"])
    body = {"business_name": "Burst"}
    replies = await asyncio.gather(
        *(api.post("/api/v3/clients", body, headers=keyed("burst")) for _ in range(8))
    )
    created = [reply for reply in replies if reply.status == 201]
    assert created, [reply.body for reply in replies]
    assert all(reply.raw == created[0].raw for reply in created)
    assert all(
        (reply.status, reply.body) == (409, IN_PROGRESS)
        for reply in replies
        if reply.status != 201
    )
    assert await event_count(admin_pool, business["business_id"]) == before + 1
    assert (await api.get("/api/v3/clients")).body == [created[0].body]


async def test_a_client_that_writes_then_reads_at_once_always_sees_its_writes(
    api: Api,
) -> None:
    """Proves read-your-writes by default: each command answers 2xx (not 202) only once
    the query routes show it, by reading list, client, statement, summary and
    categories right after each write with no header."""
    made = await api.post("/api/v3/clients/category", {"name": "Fresh"})
    assert made.status == 201
    category = made.body
    listed = (await api.get("/api/v3/clients/categories")).body
    assert listed[-1]["name"] == "Fresh"
    created = await api.post(
        "/api/v3/clients", {"business_name": "Fresh", "category_id": category["id"]}
    )
    assert created.status == 201
    client = created.body
    assert (await api.get("/api/v3/clients")).body == [client]
    for n in range(1, 4):
        posted = await api.post(
            f"/api/v3/clients/{client['id']}/transactions",
            {"type": "debit", "amount": "1.10"},
        )
        assert posted.status == 201
        summary = (await api.get("/api/v3/clients/summary")).body
        assert summary["total_balance"] == Decimal("1.10") * n
        statement = (await api.get(f"/api/v3/clients/{client['id']}/transactions")).body
        assert statement["transactions_count"] == n
    counts = (await api.get("/api/v3/clients/categories")).body
    assert counts[-1]["customer_count"] == 1


async def test_prefer_respond_async_answers_202_with_the_same_body_and_a_position(
    api: Api,
) -> None:
    """Proves `Prefer: respond-async` skips the wait: 202 with the body a synchronous
    call would give and X-Ledger-Position, which X-Ledger-Min-Position then waits for,
    by creating a client, posting to it asynchronously and reading at the position."""
    prefer = {"Prefer": "respond-async"}
    created = await api.post(
        "/api/v3/clients", {"business_name": "Async"}, headers=prefer
    )
    assert created.status == 202
    assert list(created.body) == CLIENT_FIELDS
    position = created.headers["X-Ledger-Position"]
    seen = await api.get(
        f"/api/v3/clients/{created.body['id']}",
        headers={"X-Ledger-Min-Position": position},
    )
    assert (seen.status, seen.body) == (200, created.body)
    posted = await api.post(
        f"/api/v3/clients/{created.body['id']}/transactions",
        {"type": "debit", "amount": "20351822.92"},
        headers=prefer,
    )
    assert posted.status == 202
    assert list(posted.body) == TRANSACTION_FIELDS
    assert posted.body["balance_after"] == Decimal("20351822.92")
    later = posted.headers["X-Ledger-Position"]
    assert int(later) > int(position)
    summary = await api.get(
        "/api/v3/clients/summary", headers={"X-Ledger-Min-Position": later}
    )
    assert summary.body["total_balance"] == Decimal("20351822.92")
    statement = await api.get(
        f"/api/v3/clients/{created.body['id']}/transactions",
        headers={"X-Ledger-Min-Position": later},
    )
    assert statement.body["transactions"] == [posted.body]


async def test_every_query_route_honours_a_reached_min_position(api: Api) -> None:
    """Proves X-Ledger-Min-Position is accepted by every query route, which answers
    200 at exactly the position reached, by reading each at the last write's
    position (nothing writes after it, so the read models stand exactly there)."""
    client = await api.create_client(business_name="Positioned")
    posted = await api.post(
        f"/api/v3/clients/{client['id']}/deposits", {"type": "debit", "amount": "3"}
    )
    assert posted.status in (201, 202), posted.body
    position = posted.headers["X-Ledger-Position"]
    header = {"X-Ledger-Min-Position": position}
    for path in (
        "/api/v3/clients",
        "/api/v3/clients/summary",
        "/api/v3/clients/categories",
        "/api/v3/clients/clients/categories",
        f"/api/v3/clients/{client['id']}",
        f"/api/v3/clients/{client['id']}/transactions",
        f"/api/v3/clients/{client['id']}/deposits",
    ):
        reply = await api.get(path, headers=header)
        assert (reply.status, reply.headers["X-Ledger-Position"]) == (200, position)
    malformed = await api.get(
        "/api/v3/clients", headers={"X-Ledger-Min-Position": "soon"}
    )
    assert (malformed.status, malformed.body) == (
        422,
        invalid(
            {"X-Ledger-Min-Position": ["The X-Ledger-Min-Position must be an integer."]}
        ),
    )


async def test_a_min_position_never_reached_is_a_503_with_retry_after(api: Api) -> None:
    """Proves a query whose X-Ledger-Min-Position cannot be met within the bound
    answers 503 with Retry-After instead of hanging, only after waiting the whole
    bound, by asking for a position far beyond the last event (a hang would end in
    the session client's 30 s timeout)."""
    started = time.monotonic()
    reply = await api.get(
        "/api/v3/clients", headers={"X-Ledger-Min-Position": "999999999999999"}
    )
    waited = time.monotonic() - started
    assert (reply.status, reply.body) == (503, NOT_YET)
    assert reply.headers["Retry-After"] == "1"
    # How long it waited at least, never how fast: a loaded machine only adds.
    assert waited >= READ_YOUR_WRITES_TIMEOUT_S - 0.5
