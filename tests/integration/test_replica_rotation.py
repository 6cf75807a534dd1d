"""Read-your-writes through the hot standby, and its rotation: a replica that stops
replaying leaves it, and returns once it has caught up."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from tests.integration.replica_service import (  # noqa: F401
    replica_metric,
    replica_state,
    replicated,
    wait_in_rotation,
)
from tests.support.standby import apply_delay, paused_standby, standby_restored

Headers = dict[str, str]
WRITERS = 8
ROUNDS = 12
APPLY_DELAY_MS = 50


async def _post_then_get(
    client: TestClient, headers: Headers, rounds: int, amount_minor: int = 100
) -> list[tuple[int, float]]:
    """A client, then `rounds` debits each followed at once by a GET of the client:
    the status of each POST and the balance each GET shows."""
    created = await client.post(
        "/api/v3/clients", json={"business_name": "Reader"}, headers=headers
    )
    assert created.status == 201, await created.text()
    client_id = (await created.json())["id"]
    seen: list[tuple[int, float]] = []
    for _ in range(rounds):
        posted = await client.post(
            f"/api/v3/clients/{client_id}/transactions",
            json={"type": "debit", "amount": f"{amount_minor / 100:.2f}"},
            headers=headers,
        )
        read = await client.get(f"/api/v3/clients/{client_id}", headers=headers)
        assert read.status == 200, await read.text()
        seen.append((posted.status, (await read.json())["unformated_balance"]))
    return seen


async def test_every_get_after_a_post_sees_it_through_the_replica(
    replicated: TestClient,  # noqa: F811
    business: dict[str, Any],
) -> None:
    """Proves read-your-writes holds without a header when GETs go to the standby: it
    applies each commit 50 ms late (recovery_min_apply_delay), which a GET right after
    a POST would see unless the POST waited for the replay; 8 writers post 12 debits
    each concurrently and each GET shows exactly the balance so far. Reads went to the
    standby, and none fell back to the primary."""
    headers = business["headers"]
    reads = await replica_metric(replicated, "ledger_replica_reads_total")
    async with apply_delay(APPLY_DELAY_MS):
        results = await asyncio.gather(
            *(_post_then_get(replicated, headers, ROUNDS) for _ in range(WRITERS))
        )
    expected = [(201, round(n * 1.00, 2)) for n in range(1, ROUNDS + 1)]
    assert results == [expected] * WRITERS
    assert await replica_metric(replicated, "ledger_replica_reads_total") > reads
    assert await replica_metric(replicated, "ledger_replica_fallbacks_total") == 0
    assert (await replica_state(replicated))["state"] == "in"


async def test_a_paused_replica_leaves_the_rotation_and_returns_after_resume(
    replicated: TestClient,  # noqa: F811
    business: dict[str, Any],
) -> None:
    """Proves the rotation follows replay: with the standby's replay paused, a POST
    still answers 201 (after LEDGER_REPLICA_LAG_MAX_MS the replica is set out) and
    /readyz and /metrics show it out; later POSTs answer 201 and GETs show them (from
    the primary). After pg_wal_replay_resume it catches up and comes back in, and
    reads go to it again."""
    headers = business["headers"]
    async with standby_restored(), paused_standby():
        assert await _post_then_get(replicated, headers, 3) == [
            (201, 1.0),
            (201, 2.0),
            (201, 3.0),
        ]
        state = await replica_state(replicated)
        assert (state["state"], state["in_rotation"], state["paused"]) == (
            "out",
            False,
            True,
        )
        assert await replica_metric(replicated, "ledger_replica_in_rotation") == 0
    await wait_in_rotation(replicated, True)
    state = await replica_state(replicated)
    assert (state["state"], state["paused"], state["error"]) == ("in", False, None)
    assert await replica_metric(replicated, "ledger_replica_in_rotation") == 1
    reads = await replica_metric(replicated, "ledger_replica_reads_total")
    assert await _post_then_get(replicated, headers, 2, 250) == [
        (201, 2.5),
        (201, 5.0),
    ]
    assert await replica_metric(replicated, "ledger_replica_reads_total") > reads
