"""Statements end to end: running balances in date order, inclusive periods with
opening and closing balances, and the dates a posting or a period may carry."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import asyncpg

from tests.e2e.ledger_api import Api, today
from tests.e2e.seed_shapes import CLIENT_FIELDS, invalid
from tests.e2e.supervisor import event_count

STATEMENT_FIELDS = [
    *CLIENT_FIELDS,
    "opening_balance",
    "closing_balance",
    "transactions_count",
]
DATE_FORMAT = "The {name} must be a date in the format YYYY-MM-DD."


async def test_a_back_dated_posting_moves_every_later_running_balance(api: Api) -> None:
    """Proves statements run in (date, posting order) and a back-dated posting changes
    the balance_after of every later row, in its POST answer and in the statement, by
    posting out of date order and reading the statement."""
    client = await api.create_client(business_name="Back-dated")
    day = today()
    first_day, middle_day, late_day = (day - dt.timedelta(days=n) for n in (10, 7, 5))
    first = await api.post_transaction(
        client["id"], "debit", "100.00", date=first_day.isoformat()
    )
    late = await api.post_transaction(
        client["id"], "debit", "50.00", date=late_day.isoformat()
    )
    assert late["balance_after"] == 150
    middle = await api.post_transaction(
        client["id"], "credit", "30.00", date=middle_day.isoformat()
    )
    assert middle["balance_after"] == 70
    same_day = await api.post_transaction(
        client["id"], "debit", "5.25", date=first_day.isoformat()
    )
    assert same_day["balance_after"] == Decimal("105.25")
    reply = await api.get(f"/api/v3/clients/{client['id']}/transactions")
    assert reply.status == 200
    statement = reply.body
    assert list(statement) == STATEMENT_FIELDS
    assert statement["transactions"] == [
        first,
        same_day,
        {**middle, "balance_after": Decimal("75.25")},
        {**late, "balance_after": Decimal("125.25")},
    ]
    assert (
        statement["opening_balance"],
        statement["closing_balance"],
        statement["transactions_count"],
    ) == (0, Decimal("125.25"), 4)
    fetched = (await api.get(f"/api/v3/clients/{client['id']}")).body
    client_part = {name: statement[name] for name in CLIENT_FIELDS}
    assert client_part == {**fetched, "transactions": client_part["transactions"]}
    assert fetched["balance"] == "125.25"


async def test_a_statement_period_is_inclusive_with_opening_and_closing_balances(
    api: Api,
) -> None:
    """Proves from/to select transactions by date with both bounds included, and the
    opening balance is everything before `from`, by cutting one history five ways."""
    client = await api.create_client(business_name="Periodic")
    day = today()
    d1, d2, d3 = (day - dt.timedelta(days=n) for n in (20, 15, 10))
    t1 = await api.post_transaction(client["id"], "debit", "100", date=d1.isoformat())
    t2 = await api.post_transaction(client["id"], "credit", "40", date=d2.isoformat())
    t3 = await api.post_transaction(client["id"], "debit", "15.5", date=d3.isoformat())
    path = f"/api/v3/clients/{client['id']}/transactions"
    one_day = dt.timedelta(days=1)
    cases = [
        ({"from": d1.isoformat(), "to": d1.isoformat()}, [t1], 0, 100),
        (
            {"from": d2.isoformat(), "to": d3.isoformat()},
            [t2, t3],
            100,
            Decimal("75.5"),
        ),
        ({"from": (d1 + one_day).isoformat()}, [t2, t3], 100, Decimal("75.5")),
        ({"to": (d3 - one_day).isoformat()}, [t1, t2], 0, 60),
        ({"from": (d3 + one_day).isoformat()}, [], Decimal("75.5"), Decimal("75.5")),
        ({"to": (d1 - one_day).isoformat()}, [], 0, 0),
        ({"from": "", "to": ""}, [t1, t2, t3], 0, Decimal("75.5")),
        ({"id": "12345"}, [t1, t2, t3], 0, Decimal("75.5")),
    ]
    for params, transactions, opening, closing in cases:
        reply = await api.get(path, params=params)
        assert reply.status == 200, params
        assert reply.body["transactions"] == transactions, params
        assert reply.body["opening_balance"] == opening, params
        assert reply.body["closing_balance"] == closing, params
        assert reply.body["transactions_count"] == len(transactions), params
        assert reply.body["balance"] == "75.50", params


async def test_bad_statement_dates_are_422s(api: Api) -> None:
    """Proves from/to must be real YYYY-MM-DD dates with from <= to, on statements and
    deposit lists alike, by asking with malformed and reversed periods."""
    client = await api.create_client(business_name="Dated")
    for route in ("transactions", "deposits"):
        path = f"/api/v3/clients/{client['id']}/{route}"
        for name in ("from", "to"):
            for value in (
                "2024-13-01",
                "2024-02-30",
                "yesterday",
                "01/02/2024",
                "2024-1-1",
            ):
                reply = await api.get(path, params={name: value})
                assert reply.status == 422, (route, name, value)
                assert reply.body == invalid({name: [DATE_FORMAT.format(name=name)]})
        reversed_period = await api.get(
            path, params={"from": "2024-02-02", "to": "2024-02-01"}
        )
        assert (reversed_period.status, reversed_period.body) == (
            422,
            invalid({"to": ["The to date must be on or after the from date."]}),
        )


async def _service_day(api: Api, client_id: int) -> dt.date:
    """The service's today (UTC), read from an undated posting's answer: its date,
    which is the UTC date of its created_at."""
    posted = await api.post_transaction(client_id, "debit", "1")
    assert posted["date"] == posted["created_at"][:10]
    return dt.date.fromisoformat(posted["date"])


async def _late_dates_refused(
    api: Api, client_id: int, tomorrow: dt.date
) -> list[tuple[int, Any]]:
    answers = []
    for route in ("transactions", "deposits"):
        for late in (tomorrow + dt.timedelta(days=1), dt.date(9999, 12, 31)):
            reply = await api.post(
                f"/api/v3/clients/{client_id}/{route}",
                {"type": "debit", "amount": "1", "date": late.isoformat()},
            )
            answers.append((reply.status, reply.body))
    return answers


async def test_a_transaction_may_be_dated_tomorrow_but_not_later(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves the date bound (UTC): tomorrow is accepted, the day after is a 422 that
    writes nothing, and no date means the day of recording, by posting each; the day
    is read from the service's answers (checked again if midnight UTC passed)."""
    client = await api.create_client(business_name="Future")
    for undated in ({}, {"date": None}, {"date": ""}):
        posted = await api.post_transaction(client["id"], "debit", "1", **undated)
        assert posted["date"] == posted["created_at"][:10]
    for _ in range(2):  # a second time only if the service's day changed meanwhile
        day = await _service_day(api, client["id"])
        tomorrow = day + dt.timedelta(days=1)
        accepted = await api.post_transaction(
            client["id"], "debit", "1", date=tomorrow.isoformat()
        )
        assert accepted["date"] == tomorrow.isoformat()
        before = await event_count(admin_pool, business["business_id"])
        answers = await _late_dates_refused(api, client["id"], tomorrow)
        after = await event_count(admin_pool, business["business_id"])
        if await _service_day(api, client["id"]) == day:
            break
    refused = (422, invalid({"date": ["The date may not be later than tomorrow."]}))
    assert answers == [refused] * 4
    assert after == before
