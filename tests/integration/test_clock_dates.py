"""Dates by the service's one clock (shared/clock.py), in-process with a clock set by
the test: a request that crosses midnight UTC between its route and its commit, and
what the statement's from/to and as_of (with and without an offset) then answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared.clock import Clock
from tests.integration.import_calls import send
from tests.support.environment import Environment
from tests.support.service import http_client
from tests.support.workbooks import HEADER, workbook

DAY = dt.date(2031, 3, 14)
NEXT_DAY = DAY + dt.timedelta(days=1)
MIDNIGHT = dt.datetime.combine(NEXT_DAY, dt.time(0), tzinfo=dt.UTC)
KIRITIMATI = dt.timezone(dt.timedelta(hours=14))


class MidnightClock(Clock):
    """A clock that, once crossed, reads `before` exactly the first time, then runs
    on from `after`: the first reader of a request sees one day, every later reader
    the next, however long the request takes."""

    def __init__(self) -> None:
        super().__init__()
        self._crossing: tuple[dt.datetime, dt.datetime] | None = None

    def cross(self, before: dt.datetime, after: dt.datetime) -> None:
        self._crossing = (before, after)

    def now(self) -> dt.datetime:
        if self._crossing is None:
            return super().now()
        before, after = self._crossing
        self._crossing = None
        self.set(after)
        return before


@pytest.fixture
async def clocked(
    environment: Environment, service: TestClient
) -> AsyncIterator[tuple[TestClient, MidnightClock]]:
    """The HTTP app with a MidnightClock (the session's relay and projectors, which
    `service` runs, make its read-your-writes answers wait as usual)."""
    clock = MidnightClock()
    clock.set(dt.datetime.combine(DAY, dt.time(12), tzinfo=dt.UTC))
    async with http_client(environment.settings, clock) as client:
        yield client, clock


async def _post(
    client: TestClient, business: dict[str, Any], path: str, body: object
) -> dict[str, Any]:
    answer = await client.post(path, json=body, headers=business["headers"])
    assert answer.status in (200, 201), await answer.text()
    return await answer.json()  # type: ignore[no-any-return]


async def _get(
    client: TestClient, business: dict[str, Any], path: str, **params: str
) -> tuple[int, Any]:
    answer = await client.get(path, params=params, headers=business["headers"])
    return answer.status, await answer.json()


def _recorded(body: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(body["created_at"])


async def test_a_posting_that_crosses_midnight_is_dated_the_day_it_is_recorded(
    clocked: tuple[TestClient, MidnightClock], business: dict[str, Any]
) -> None:
    """An undated debit whose route reads 23:59:59.9 UTC and whose commit reads 00:00
    the next day is dated that next day, the UTC date of its recorded_at, so the
    statement's from/to and as_of (UTC, and with a +14:00 offset) agree on it."""
    client, clock = clocked
    created = await _post(client, business, "/api/v3/clients", {"business_name": "A"})
    base = f"/api/v3/clients/{created['id']}"
    await _post(
        client, business, base + "/transactions", {"type": "debit", "amount": 10}
    )
    clock.cross(MIDNIGHT - dt.timedelta(milliseconds=100), MIDNIGHT)
    late = await _post(
        client, business, base + "/transactions", {"type": "debit", "amount": 5}
    )
    assert (late["date"], late["created_at"][:10]) == (str(NEXT_DAY), str(NEXT_DAY))
    recorded = _recorded(late)
    assert MIDNIGHT <= recorded < MIDNIGHT + dt.timedelta(seconds=10)
    lines = {}
    for day in (DAY, NEXT_DAY):
        status, statement = await _get(
            client,
            business,
            base + "/transactions",
            **{"from": str(day), "to": str(day)},
        )
        assert status == 200, statement
        lines[day] = [
            (t["type"], t["amount"], t["date"]) for t in statement["transactions"]
        ]
    assert lines == {
        DAY: [("debit", 10, str(DAY))],
        NEXT_DAY: [("debit", 5, str(NEXT_DAY))],
    }
    balances = {}
    for as_of in (
        str(DAY),
        str(NEXT_DAY),
        recorded.astimezone(KIRITIMATI).isoformat(),
        (recorded - dt.timedelta(microseconds=1)).astimezone(KIRITIMATI).isoformat(),
    ):
        status, body = await _get(client, business, base, as_of=as_of)
        assert status == 200, body
        balances[as_of] = body["unformated_balance"]
    assert list(balances.values()) == [10, 15, 15, 10]


async def test_a_reversal_that_crosses_midnight_is_dated_the_day_it_is_recorded(
    clocked: tuple[TestClient, MidnightClock], business: dict[str, Any]
) -> None:
    """A reversal's date is taken from the commit's reading of the clock, which is its
    recorded_at: its route reads no clock, so with the clock crossing midnight the
    commit reads 23:59:59.9 and both are that day; from/to and as_of agree."""
    client, clock = clocked
    created = await _post(client, business, "/api/v3/clients", {"business_name": "B"})
    base = f"/api/v3/clients/{created['id']}"
    posted = await _post(
        client, business, base + "/transactions", {"type": "debit", "amount": "7.25"}
    )
    assert posted["date"] == str(DAY)
    clock.cross(MIDNIGHT - dt.timedelta(milliseconds=100), MIDNIGHT)
    reversal = await _post(
        client, business, base + f"/transactions/{posted['id']}/reverse", {}
    )
    reversed_at = _recorded(reversal)
    assert (reversal["date"], reversal["created_at"]) == (
        str(DAY),
        f"{DAY}T23:59:59.900000Z",
    )
    lines = {}
    for day in (DAY, NEXT_DAY):
        status, statement = await _get(
            client,
            business,
            base + "/transactions",
            **{"from": str(day), "to": str(day)},
        )
        assert status == 200, statement
        lines[day] = [
            (t["type"], t["amount"], t["date"]) for t in statement["transactions"]
        ]
    assert lines == {
        DAY: [("debit", 7.25, str(DAY)), ("credit", 7.25, str(DAY))],
        NEXT_DAY: [],
    }
    before = (reversed_at - dt.timedelta(microseconds=1)).astimezone(KIRITIMATI)
    balances = {}
    for as_of in (before.isoformat(), reversed_at.isoformat(), str(DAY)):
        status, body = await _get(client, business, base, as_of=as_of)
        assert status == 200, body
        balances[as_of] = body["unformated_balance"]
    assert list(balances.values()) == [7.25, 0, 0]


async def test_an_import_is_dated_by_the_same_clock(
    clocked: tuple[TestClient, MidnightClock],
    business: dict[str, Any],
    pool: asyncpg.Pool,
) -> None:
    """An import read at 23:59:59.9 UTC records every event at that instant and dates
    the opening debit and deposit that same UTC day (one reading for the import)."""
    client, clock = clocked
    clock.cross(MIDNIGHT - dt.timedelta(milliseconds=100), MIDNIGHT)
    raw = workbook(
        "openpyxl", [[*HEADER, "Deposit Amount"], ["Ama", None, None, None, "12", "3"]]
    )
    status, body = await send(client, business, raw)
    assert status == 201, body
    rows = await pool.fetch(
        "SELECT type, payload->>'date' AS date, recorded_at FROM events"
        " WHERE metadata->>'correlation_id' = $1 ORDER BY position",
        body["import_id"],
    )
    assert {row["recorded_at"] for row in rows} == {
        MIDNIGHT - dt.timedelta(milliseconds=100)
    }
    assert [(row["type"], row["date"]) for row in rows] == [
        ("clients.imported", None),
        ("client.created", None),
        ("transaction.posted", str(DAY)),
        ("deposit.posted", str(DAY)),
    ]
