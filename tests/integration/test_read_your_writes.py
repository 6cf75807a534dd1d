"""Commands answer after their events are visible through the query routes."""

from __future__ import annotations

import asyncpg
from aiohttp.test_utils import TestClient

from tests.integration.scenarios import id_of, last_position


async def test_create_post_then_list_sees_every_write(
    service: TestClient, business: dict[str, object], pool: asyncpg.Pool
) -> None:
    """Creates a client, posts the seed's two sample totals and lists at once: the
    list already shows the seed's balance, as each command waited for projections;
    each posting's X-Ledger-Position is its event's position in the store."""
    headers = business["headers"]
    created = await service.post(
        "/api/v3/clients", json={"business_name": "Abas two"}, headers=headers
    )
    assert created.status == 201
    client_id = (await created.json())["id"]
    for entry_type, amount in (("debit", "43228120.29"), ("credit", "22876297.37")):
        posted = await service.post(
            f"/api/v3/clients/{client_id}/transactions",
            json={"type": entry_type, "amount": amount},
            headers=headers,
        )
        assert posted.status == 201
        written = await last_position(pool, id_of(business))
        assert int(posted.headers["X-Ledger-Position"]) == written
    listed = await service.get("/api/v3/clients", headers=headers)
    [client] = await listed.json()
    assert client["unformated_balance"] == 20351822.92
    assert client["balance"] == "20,351,822.92"
    assert client["total_debit"] == "43,228,120.29"
    assert client["total_credit"] == "22,876,297.37"


async def test_query_answers_carry_the_position_their_read_models_reached(
    service: TestClient, business: dict[str, object]
) -> None:
    """A command answers with its event's position; once it answered (read-your-writes),
    every query route answers with an X-Ledger-Position at or past it."""
    headers = business["headers"]
    created = await service.post(
        "/api/v3/clients", json={"business_name": "Positioned"}, headers=headers
    )
    written = int(created.headers["X-Ledger-Position"])
    client_id = (await created.json())["id"]
    for path in (
        "/api/v3/clients",
        "/api/v3/clients/summary",
        "/api/v3/clients/categories",
        f"/api/v3/clients/{client_id}",
        f"/api/v3/clients/{client_id}/transactions",
        f"/api/v3/clients/{client_id}/deposits",
    ):
        answer = await service.get(path, headers=headers)
        assert answer.status == 200, path
        assert int(answer.headers["X-Ledger-Position"]) >= written, path
