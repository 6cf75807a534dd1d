"""Two real `ledger api` processes on one database race deposit credits (deposit
used) on one client: optimistic concurrency across processes keeps the deposit from
going below zero, and every credit is either written once (201) or refused (422).

The race is made certain, not left to luck: process A is held by the test-only pause
point LEDGER_TEST_PAUSE_AT=api.before_commit with its first batch inserted and not
committed; process B's batch then waits on A's uncommitted row; A is released, so B's
append meets the unique (stream_id, version) of A's rows and B decides again from the
new head. The session's `ledger run` (relay and projectors) serves the read models.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from shared import events as e
from tests.e2e.api_processes import PAUSE_DEADLINE_S, ApiProcess, ApiProcesses
from tests.e2e.deadlines import wait_until
from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import invalid
from tests.e2e.supervisor import LedgerService

CREDITS_PER_PROCESS = 8
REFUSED = invalid({"amount": ["The amount may not be greater than the deposit."]})


@pytest.fixture
def api_processes(tmp_path: Path) -> Iterator[ApiProcesses]:
    processes = ApiProcesses(tmp_path)
    yield processes
    processes.stop_all()


async def _credits(api: ApiProcess, api_key: str, path: str) -> list[Any]:
    """CREDITS_PER_PROCESS concurrent deposit credits of 1.00 to one process."""
    async with aiohttp.ClientSession(
        base_url=api.base_url, timeout=aiohttp.ClientTimeout(total=60)
    ) as http:

        async def one() -> tuple[int, Any]:
            async with http.post(
                path,
                json={"type": "credit", "amount": "1.00"},
                headers={"Authorization": f"Bearer {api_key}"},
            ) as response:
                return response.status, json.loads(
                    await response.read(), parse_float=Decimal
                )

        return await asyncio.gather(*(one() for _ in range(CREDITS_PER_PROCESS)))


async def _waits_on_a_lock(pool: asyncpg.Pool) -> bool:
    """Whether an append to the events table waits on a lock (on the unique index
    entry of a row another transaction inserted and has not committed yet)."""
    count = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        " AND query LIKE '%INSERT INTO events%'"
    )
    return bool(count > 0)


async def _deposit_moves(pool: asyncpg.Pool, client_id: int) -> list[int]:
    rows = await pool.fetch(
        "SELECT payload FROM events WHERE stream_id = $1 AND type = 'deposit.posted'"
        " ORDER BY version",
        e.client_stream(client_id),
    )
    moves = [json.loads(row["payload"]) for row in rows]
    return [
        move["amount_minor"] * (1 if move["entry_type"] == "debit" else -1)
        for move in moves
    ]


async def test_two_api_processes_racing_deposit_credits_never_overdraw_it(
    ledger: LedgerService,
    business: dict[str, Any],
    api: Api,
    admin_pool: asyncpg.Pool,
    api_processes: ApiProcesses,
) -> None:
    """A 10.00 deposit and 16 concurrent credits of 1.00, 8 through each of two
    `ledger api` processes forced to conflict, give exactly 10 answers 201 and 6
    answers 422 (the exact refusal), a deposit of 0 and no running total below zero
    in the store; process B logs that it decided again after a conflict."""
    client_id = (await api.create_client())["id"]
    await api.post_deposit(client_id, "debit", "10.00")
    api_key, path = str(business["api_key"]), f"/api/v3/clients/{client_id}/deposits"
    first = await api_processes.start(
        ledger.environment, "a", {"LEDGER_TEST_PAUSE_AT": "api.before_commit"}
    )
    second = await api_processes.start(
        ledger.environment, "b", {"LEDGER_LOG_LEVEL": "INFO"}
    )
    through_first = asyncio.ensure_future(_credits(first, api_key, path))
    await first.wait_for_log("test pause at api.before_commit")
    through_second = asyncio.ensure_future(_credits(second, api_key, path))
    await wait_until(
        lambda: _waits_on_a_lock(admin_pool),
        PAUSE_DEADLINE_S,
        "process b waits on process a's uncommitted rows",
    )
    first.release()
    answers = [*await through_first, *await through_second]
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] * 10 + [422] * 6
    assert [body for status, body in answers if status == 422] == [REFUSED] * 6
    assert "batch conflict" in second.log()
    moves = await _deposit_moves(admin_pool, client_id)
    assert moves == [1000] + [-100] * 10
    running = [sum(moves[: index + 1]) for index in range(len(moves))]
    assert min(running) == 0
    client = await api.get(f"/api/v3/clients/{client_id}")
    assert client.body["deposit_amount"] == Decimal("0")
