"""Idempotency across a real process restart: a `ledger api` process SIGKILLed after
its COMMIT returned and before it wrote the answer, then a keyed retry against the
restarted API.

The kill happens at that exact moment: the process is started with the test-only
pause point LEDGER_TEST_PAUSE_AT=api.after_commit (shared/pause_points.py)
and killed once its log says it holds there. The session's `ledger run` (relay and
projectors) serves the same database, so the first answer would have been a 201.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from services.cli.businesses import provision_business
from tests.e2e.api_processes import ApiProcesses
from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import DEPOSIT_FIELDS
from tests.e2e.supervisor import LedgerService
from tests.support.environment import Environment, create_environment, drop_environment

AMOUNT = "250.00"


@pytest.fixture
def api_processes(tmp_path: Path) -> Iterator[ApiProcesses]:
    processes = ApiProcesses(tmp_path)
    yield processes
    processes.stop_all()


async def _events_with_key(pool: asyncpg.Pool, business_id: int, key: str) -> Any:
    return await pool.fetch(
        "SELECT position, type, payload, recorded_at FROM events"
        " WHERE business_id = $1 AND metadata->>'idempotency_key' = $2",
        business_id,
        key,
    )


@pytest.fixture
async def unprojected(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    """A database of its own where no relay or projector runs: nothing committed
    ever becomes visible in the read models."""
    environment = await create_environment(*servers, tag="crash")
    yield environment
    await drop_environment(environment)


async def _post(
    base_url: str,
    api_key: str,
    path: str,
    key: str,
    body: dict[str, str] | None = None,
) -> Any:
    async with (
        aiohttp.ClientSession(
            base_url=base_url, timeout=aiohttp.ClientTimeout(total=60)
        ) as http,
        http.post(
            path,
            json=body or {"type": "debit", "amount": AMOUNT},
            headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": key},
        ) as response,
    ):
        raw = await response.read()
        return response.status, response.headers, raw


def _expected_body(row: asyncpg.Record, client_id: int) -> dict[str, object]:
    """The deposit body the first answer carried, from the one stored event."""
    payload = json.loads(row["payload"])
    created = row["recorded_at"].astimezone(dt.UTC)
    return {
        "id": payload["deposit_id"],
        "client_id": client_id,
        "type": "debit",
        "amount": Decimal("250"),
        "date": payload["date"],
        "description": "",
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "deposit_after": Decimal("250"),
        "reversed": False,
        "reversal_of": None,
    }


async def test_keyed_deposit_killed_after_commit_replays_once_after_restart(
    ledger: LedgerService,
    business: dict[str, Any],
    api: Api,
    admin_pool: asyncpg.Pool,
    api_processes: ApiProcesses,
) -> None:
    """A keyed deposit whose `ledger api` is SIGKILLed between COMMIT and the answer,
    retried against a restarted `ledger api`, answers the first response (201, the
    same body, Idempotent-Replayed: true) and leaves exactly one event: the pause point
    holds the process there, the test checks the event is committed, kills it, restarts
    and retries."""
    client_id = (await api.create_client())["id"]
    business_id, api_key = business["business_id"], str(business["api_key"])
    path, key = f"/api/v3/clients/{client_id}/deposits", str(uuid.uuid4())
    paused = await api_processes.start(
        ledger.environment, "paused", {"LEDGER_TEST_PAUSE_AT": "api.after_commit"}
    )
    first = asyncio.ensure_future(_post(paused.base_url, api_key, path, key))
    await paused.wait_for_log("test pause at api.after_commit")
    assert len(await _events_with_key(admin_pool, business_id, key)) == 1
    paused.kill()
    with pytest.raises(aiohttp.ClientError):
        await first
    restarted = await api_processes.start(ledger.environment, "restarted")
    status, headers, raw = await _post(restarted.base_url, api_key, path, key)
    rows = await _events_with_key(admin_pool, business_id, key)
    assert [row["type"] for row in rows] == ["deposit.posted"]
    body = json.loads(raw, parse_float=Decimal)
    assert (status, headers["Idempotent-Replayed"]) == (201, "true"), body
    assert headers["X-Ledger-Position"] == str(rows[0]["position"])
    assert list(body) == DEPOSIT_FIELDS
    assert body == _expected_body(rows[0], client_id)
    client = await api.get(f"/api/v3/clients/{client_id}")
    assert client.body["deposit_amount"] == Decimal("250")


async def test_replay_after_a_crash_answers_202_while_the_events_are_not_visible(
    unprojected: Environment, api_processes: ApiProcesses
) -> None:
    """A keyed client creation whose `ledger api` is SIGKILLed after COMMIT, replayed
    by a restarted API while no projector has applied it, answers what the first
    attempt would have answered after its bounded read-your-writes wait: 202 with the
    same client body (never a 201 the read models do not back), one event, and the
    next replay answers the same 202."""
    created = await provision_business(unprojected.settings, "Crash, unprojected")
    api_key, key = str(created["api_key"]), str(uuid.uuid4())
    bound = {"LEDGER_READ_YOUR_WRITES_TIMEOUT_S": "1"}
    paused = await api_processes.start(
        unprojected, "paused", {"LEDGER_TEST_PAUSE_AT": "api.after_commit", **bound}
    )
    body = {"business_name": "Killed after commit"}
    first = asyncio.ensure_future(
        _post(paused.base_url, api_key, "/api/v3/clients", key, body)
    )
    await paused.wait_for_log("test pause at api.after_commit")
    paused.kill()
    with pytest.raises(aiohttp.ClientError):
        await first
    restarted = await api_processes.start(unprojected, "restarted", bound)
    answers = [
        await _post(restarted.base_url, api_key, "/api/v3/clients", key, body)
        for _ in range(2)
    ]
    assert [(status, h["Idempotent-Replayed"]) for status, h, _ in answers] == [
        (202, "true"),
        (202, "true"),
    ]
    assert answers[0][2] == answers[1][2]
    assert json.loads(answers[0][2])["business_name"] == "Killed after commit"
    conn = await asyncpg.connect(unprojected.admin_url)
    try:
        types = await conn.fetch(
            "SELECT type FROM events WHERE metadata->>'idempotency_key' = $1", key
        )
    finally:
        await conn.close()
    assert [row["type"] for row in types] == ["client.created"]
