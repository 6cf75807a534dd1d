"""Erasure under load: postings with descriptions to one client run from several
callers while the client is erased; not one posting is lost or counted twice, and
nothing written after the erasure holds a personal field."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from services.audit.report import Report
from tests.integration.audit_history import report_of
from tests.integration.test_personal_data_at_rest import _marked, _new_marker
from tests.support.environment import Environment

CALLERS = 8
POSTINGS_EACH = 12


async def test_postings_running_through_an_erasure_are_all_kept(
    environment: Environment,
    pool: asyncpg.Pool,
    admin: asyncpg.Connection,
    service: TestClient,
    business: dict[str, Any],
) -> None:
    headers = business["headers"]
    marker = _new_marker()
    created = await service.post(
        "/api/v3/clients", json=_marked(marker), headers=headers
    )
    client = await created.json()
    path = f"/api/v3/clients/{client['id']}"
    statuses: list[int] = []
    halfway = asyncio.Event()

    async def caller(n: int) -> None:
        for i in range(POSTINGS_EACH):
            body = {"type": "debit", "amount": "1.00", "description": f"{marker} {i}"}
            answer = await service.post(
                f"{path}/transactions", json=body, headers=headers
            )
            statuses.append(answer.status)
            if len(statuses) == CALLERS * POSTINGS_EACH // 2:
                halfway.set()

    async def eraser() -> int:
        await halfway.wait()
        answer = await service.post(f"{path}/erase", headers=headers)
        return answer.status

    *_, erased = await asyncio.gather(*(caller(n) for n in range(CALLERS)), eraser())

    assert erased == 200
    assert statuses == [201] * (CALLERS * POSTINGS_EACH)
    shown = await (await service.get(path, headers=headers)).json()
    assert (shown["erased"], Decimal(str(shown["unformated_balance"]))) == (
        True,
        Decimal(CALLERS * POSTINGS_EACH),
    )
    statement = await (
        await service.get(f"{path}/transactions", headers=headers)
    ).json()
    assert statement["transactions_count"] == CALLERS * POSTINGS_EACH
    assert {line["description"] for line in statement["transactions"]} == {None}
    await _stored_before_and_after(admin, business["business_id"], client["id"])
    report = await report_of(environment, pool, business)
    assert report == Report(
        ok=True,
        businesses=1,
        streams=2,
        events=2 + CALLERS * POSTINGS_EACH + 1,
        differences=[],
    )


async def _stored_before_and_after(
    admin: asyncpg.Connection, business_id: int, client_id: int
) -> None:
    """Every posting stored once; sealed before the erasure, no text after it."""
    stored = await admin.fetch(
        "SELECT type, sealed IS NOT NULL AS sealed, payload->>'description' AS text"
        " FROM events WHERE business_id = $1 AND stream_id = $2 ORDER BY version",
        business_id,
        f"client-{client_id}",
    )
    types = [row["type"] for row in stored]
    cut = types.index("client.erased")
    assert types.count("transaction.posted") == CALLERS * POSTINGS_EACH
    assert 1 < cut < len(stored) - 1  # postings landed on both sides of it
    # Before the erasure: sealed; after it: no text at all, sealed or not.
    assert all(row["sealed"] and row["text"] == "" for row in stored[1:cut])
    assert all(not row["sealed"] and row["text"] is None for row in stored[cut + 1 :])
