"""Queries read from the hot standby when it is in rotation, and from the primary when
it cannot answer: X-Ledger-Min-Position past its replay, a feed `after` it does not
hold yet."""

from __future__ import annotations

import asyncpg
from aiohttp.test_utils import TestClient

from tests.integration.replica_service import (  # noqa: F401
    replica_metric,
    replicated,
    routed,
)
from tests.integration.scenarios import wait_until
from tests.support.standby import paused_standby, standby_restored

Headers = dict[str, str]


async def _business_name(
    client: TestClient, headers: Headers, client_id: int, **more: str
) -> str:
    answer = await client.get(
        f"/api/v3/clients/{client_id}", headers={**headers, **more}
    )
    assert answer.status == 200, await answer.text()
    return str((await answer.json())["business_name"])


async def _feed_after(client: TestClient, headers: Headers, position: str) -> object:
    feed = await client.get(
        "/api/v3/events", params={"after": position}, headers=headers
    )
    assert feed.status == 200, await feed.text()
    return await feed.json()


async def test_a_query_is_served_by_the_replica_and_min_position_by_the_primary(
    replicated: TestClient,  # noqa: F811
    business: dict[str, object],
    pool: asyncpg.Pool,
) -> None:
    """Proves routing by a difference only the standby can make: with its replay
    paused, a rename sent with `Prefer: respond-async` (no wait) reaches the primary's
    read model, yet the GET still shows the old name (the standby answered; no writer
    waited, so it stayed in rotation). The same GET with X-Ledger-Min-Position of the
    rename shows the new name (the primary answered), as does the feed after the
    rename's event (each sent to the standby first: one fallback each); once replay
    resumes, the plain GET shows it too. A read a stall sent straight to the primary
    (its view too old) is read again."""
    headers: Headers = business["headers"]  # type: ignore[assignment]
    created = await replicated.post(
        "/api/v3/clients", json={"business_name": "Before"}, headers=headers
    )
    assert created.status == 201
    client_id = (await created.json())["id"]
    first = await routed(
        replicated, lambda: _business_name(replicated, headers, client_id)
    )
    assert first == ("Before", 1, 0)
    async with standby_restored(), paused_standby():
        renamed = await replicated.post(
            f"/api/v3/clients/{client_id}",
            json={"business_name": "After"},
            headers={**headers, "Prefer": "respond-async"},
        )
        assert renamed.status == 202
        position = renamed.headers["X-Ledger-Position"]

        async def on_primary() -> bool:
            name = await pool.fetchval(
                "SELECT business_name FROM rm_clients WHERE client_id = $1", client_id
            )
            return name == "After"

        await wait_until(on_primary, "the rename in the primary's read model")
        plain = await routed(
            replicated, lambda: _business_name(replicated, headers, client_id)
        )
        assert plain == ("Before", 1, 0)
        fresh = await routed(
            replicated,
            lambda: _business_name(
                replicated, headers, client_id, **{"X-Ledger-Min-Position": position}
            ),
        )
        assert fresh == ("After", 0, 1)
        page = await routed(
            replicated, lambda: _feed_after(replicated, headers, position)
        )
        assert page == ({"data": [], "next_after": int(position)}, 0, 1)

    async def renamed_on_the_replica() -> bool:
        return await _business_name(replicated, headers, client_id) == "After"

    await wait_until(renamed_on_the_replica, "the standby to replay the rename")
