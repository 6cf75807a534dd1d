"""`?as_of=`: a client and the summary as they stood at a moment of recording.

A scripted history; each moment is taken from the events' own `recorded_at` (read back
by the position each command answered with), so "at" includes that event and "just
before" (one microsecond earlier) does not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

MICROSECOND = dt.timedelta(microseconds=1)


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Script:
    def __init__(
        self, service: TestClient, pool: asyncpg.Pool, business: dict[str, Any]
    ) -> None:
        self.service, self.pool, self.headers = service, pool, business["headers"]

    async def do(self, method: str, path: str, body: object = None) -> dt.datetime:
        """Run a command; returns its event's recorded_at."""
        answer = await self.service.request(
            method, path, json=body, headers=self.headers
        )
        assert answer.status in (200, 201), await answer.text()
        self.last = await answer.json()
        position = int(answer.headers["X-Ledger-Position"])
        recorded: dt.datetime = await self.pool.fetchval(
            "SELECT recorded_at FROM events WHERE position = $1", position
        )
        return recorded

    async def get(self, path: str, moment: dt.datetime | str) -> tuple[int, Any]:
        as_of = moment if isinstance(moment, str) else rfc3339(moment)
        answer = await self.service.get(
            path, params={"as_of": as_of}, headers=self.headers
        )
        return answer.status, await answer.json()


def summary(
    balance: float, deposits: float, customers: int, archived: int
) -> dict[str, object]:
    return {
        "total_deposits": deposits,
        "customer_count": customers,
        "archived_customers": archived,
        "unarchived_customers": customers - archived,
        "total_balance": balance,
    }


@dataclass(frozen=True)
class History:
    """The scripted history's ids and the moment each of its events was recorded."""

    retail_id: int
    ama: int
    kofi: int
    yesterday: str
    retail: dt.datetime
    created: dt.datetime
    debited: dt.datetime
    deposited: dt.datetime
    moved: dt.datetime
    archived: dt.datetime
    backdated: dt.datetime
    kofi_debited: dt.datetime
    kofi_deleted: dt.datetime


async def _scripted_history(script: Script) -> History:
    """Category Retail; client Ama debited 100.00, given a deposit of 30, moved to
    Retail, archived and credited 25.50 dated yesterday; client Kofi debited and
    credited 10, then deleted."""
    retail = await script.do(
        "POST", "/api/v3/clients/category", {"name": "Retail", "description": ""}
    )
    retail_id = script.last["id"]
    created = await script.do("POST", "/api/v3/clients", {"business_name": "Ama"})
    ama = script.last["id"]
    path = f"/api/v3/clients/{ama}"
    debited = await script.do(
        "POST", f"{path}/transactions", {"type": "debit", "amount": "100.00"}
    )
    deposited = await script.do(
        "POST", f"{path}/deposits", {"type": "debit", "amount": 30}
    )
    moved = await script.do("POST", path, {"category_id": retail_id})
    archived = await script.do("POST", f"{path}/archive", {})
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    backdated = await script.do(
        "POST",
        f"{path}/transactions",
        {"type": "credit", "amount": "25.50", "date": yesterday},
    )
    await script.do("POST", "/api/v3/clients", {"business_name": "Kofi"})
    kofi = script.last["id"]
    kofi_debited = await script.do(
        "POST", f"/api/v3/clients/{kofi}/transactions", {"type": "debit", "amount": 10}
    )
    await script.do(
        "POST", f"/api/v3/clients/{kofi}/transactions", {"type": "credit", "amount": 10}
    )
    kofi_deleted = await script.do("DELETE", f"/api/v3/clients/{kofi}")
    return History(
        retail_id, ama, kofi, yesterday, retail, created, debited, deposited, moved,
        archived, backdated, kofi_debited, kofi_deleted,
    )  # fmt: skip


async def _assert_ama_up_to_her_archive(script: Script, history: History) -> None:
    """Before Ama was recorded, then at each of her events up to the archive."""
    path = f"/api/v3/clients/{history.ama}"
    created, debited = history.created, history.debited
    # Before the client was recorded: no client, an empty summary.
    status, body = await script.get(path, created - MICROSECOND)
    assert (status, body) == (404, {"message": f"Client {history.ama} not found"})
    assert await script.get("/api/v3/clients/summary", created - MICROSECOND) == (
        200,
        summary(0, 0, 0, 0),
    )

    # At the debit: 100.00 owed, no deposit, still in Uncategorised.
    status, body = await script.get(path, debited)
    assert status == 200
    assert (body["unformated_balance"], body["deposit_amount"], body["archived"]) == (
        100,
        0,
        False,
    )
    assert body["category"] == "Uncategorised"
    assert (await script.get(path, debited - MICROSECOND))[1]["unformated_balance"] == 0

    status, body = await script.get(path, history.deposited)
    assert (body["unformated_balance"], body["deposit_amount"]) == (100, 30)
    status, body = await script.get(path, history.moved)
    assert (body["category"], body["category_id"], body["archived"]) == (
        "Retail",
        history.retail_id,
        False,
    )
    assert await script.get("/api/v3/clients/summary", history.archived) == (
        200,
        summary(100, 30, 1, 1),
    )


async def _assert_the_back_dated_credit_counts_from_its_recording(
    script: Script, history: History
) -> None:
    """The back-dated credit is dated yesterday but recorded last: as_of just before
    it, the balance is 100.00; the statement's `to` (transaction dates) lists it."""
    path = f"/api/v3/clients/{history.ama}"
    status, body = await script.get(path, history.backdated - MICROSECOND)
    assert body["unformated_balance"] == 100
    statement = await script.service.get(
        f"{path}/transactions",
        params={"to": history.yesterday},
        headers=script.headers,
    )
    lines = (await statement.json())["transactions"]
    assert [(line["type"], line["amount"]) for line in lines] == [("credit", 25.5)]
    status, body = await script.get(path, history.backdated)
    assert body["unformated_balance"] == 74.5


async def _assert_the_second_client_settled_then_deleted(
    script: Script, history: History
) -> None:
    kofi, debited, deleted = history.kofi, history.kofi_debited, history.kofi_deleted
    assert await script.get("/api/v3/clients/summary", debited) == (
        200,
        summary(84.5, 30, 2, 1),
    )
    assert await script.get(
        "/api/v3/clients/summary?category_id=" + str(history.retail_id), debited
    ) == (200, summary(74.5, 30, 1, 1))
    assert await script.get("/api/v3/clients/summary", deleted) == (
        200,
        summary(74.5, 30, 1, 1),
    )
    assert (await script.get(f"/api/v3/clients/{kofi}", deleted))[0] == 404
    assert (await script.get(f"/api/v3/clients/{kofi}", debited))[0] == 200


async def test_a_client_and_the_summary_as_of_each_moment(
    service: TestClient, pool: asyncpg.Pool, business: dict[str, Any]
) -> None:
    """Proves as_of answers each moment of a scripted history as it stood then, the
    event recorded at that moment included, by asking before, at and just before
    each event."""
    script = Script(service, pool, business)
    history = await _scripted_history(script)
    assert history.retail < history.created
    await _assert_ama_up_to_her_archive(script, history)
    await _assert_the_back_dated_credit_counts_from_its_recording(script, history)
    await _assert_the_second_client_settled_then_deleted(script, history)


async def test_as_of_now_answers_what_the_read_models_answer(
    service: TestClient, business: dict[str, Any]
) -> None:
    """A date means the end of that day (UTC): as_of far ahead, or today, answers
    byte for byte what the read models answer."""
    headers = business["headers"]
    created = await service.post(
        "/api/v3/clients",
        json={"business_name": "Esi", "business_email": "esi@example.com"},
        headers=headers,
    )
    client_id = (await created.json())["id"]
    await service.post(
        f"/api/v3/clients/{client_id}/transactions",
        json={"type": "debit", "amount": "1234.56"},
        headers=headers,
    )
    today = dt.datetime.now(dt.UTC).date().isoformat()
    for path in (f"/api/v3/clients/{client_id}", "/api/v3/clients/summary"):
        live = await (await service.get(path, headers=headers)).read()
        for moment in ("2999-12-31", today, "2999-01-01T00:00:00+01:00"):
            past = await service.get(path, params={"as_of": moment}, headers=headers)
            assert (past.status, await past.read()) == (200, live), (path, moment)


async def test_a_malformed_as_of_is_a_422(
    service: TestClient, business: dict[str, Any]
) -> None:
    error = {
        "message": "The given data was invalid.",
        "errors": {
            "as_of": [
                "The as_of must be an RFC 3339 timestamp with an offset, or a date."
            ]
        },
    }
    for moment in ("yesterday", "2026-13-01", "2026-11-25T10:00:00", "1e9"):
        answer = await service.get(
            "/api/v3/clients/summary",
            params={"as_of": moment},
            headers=business["headers"],
        )
        assert (answer.status, await answer.json()) == (422, error), moment


async def test_an_as_of_beyond_the_calendar_in_utc_is_a_422(
    service: TestClient, business: dict[str, Any]
) -> None:
    """A well-formed moment whose UTC instant falls outside years 1 to 9999 (the
    store cannot compare with it) is refused as malformed, for the summary and for a
    client alike, instead of failing in the database as a 500."""
    error = {
        "message": "The given data was invalid.",
        "errors": {
            "as_of": [
                "The as_of must be an RFC 3339 timestamp with an offset, or a date."
            ]
        },
    }
    for path in ("/api/v3/clients/summary", "/api/v3/clients/1"):
        for moment in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"):
            answer = await service.get(
                path, params={"as_of": moment}, headers=business["headers"]
            )
            assert (answer.status, await answer.json()) == (422, error), moment
