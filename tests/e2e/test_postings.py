"""Transactions, statements and deposits end to end, with the seed's sample figures."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import asyncpg

from tests.e2e.ledger_api import Api, today
from tests.e2e.seed_shapes import (
    CLIENT_FIELDS,
    DEPOSIT_FIELDS,
    TIMESTAMP_PATTERN,
    TRANSACTION_FIELDS,
    invalid,
)
from tests.e2e.supervisor import event_count

STATEMENT_FIELDS = [
    *CLIENT_FIELDS,
    "opening_balance",
    "closing_balance",
    "transactions_count",
]
DATE_FORMAT = "The {name} must be a date in the format YYYY-MM-DD."


async def test_the_seeds_totals_give_the_seeds_balance(api: Api) -> None:
    """Proves debit raises and credit lowers the balance exactly as the seed's sample
    (43,228,120.29 - 22,876,297.37 = 20,351,822.92), by posting the two totals, one as
    a JSON number and one as a string, and reading every figure back."""
    client = await api.create_client(
        business_name="Abas two",
        business_phone="0265653314",
        business_email="test@gmail.com",
    )
    reply = await api.post(
        f"/api/v3/clients/{client['id']}/transactions",
        {
            "type": "debit",
            "amount": 43228120.29,
            "description": "Sales",
            "reference": "INV-1",
        },
    )
    assert reply.status == 201
    debit = reply.body
    assert list(debit) == TRANSACTION_FIELDS
    assert re.fullmatch(TIMESTAMP_PATTERN, debit["created_at"])
    assert debit == {
        "id": debit["id"],
        "client_id": client["id"],
        "type": "debit",
        "amount": Decimal("43228120.29"),
        "date": debit["created_at"][:10],  # the UTC day it was recorded
        "description": "Sales",
        "reference": "INV-1",
        "created_at": debit["created_at"],
        "balance_after": Decimal("43228120.29"),
        "reversed": False,
        "reversal_of": None,
    }
    credit = await api.post_transaction(client["id"], "credit", "22876297.37")
    assert credit["id"] != debit["id"]
    assert (credit["amount"], credit["balance_after"]) == (
        Decimal("22876297.37"),
        Decimal("20351822.92"),
    )
    assert (credit["description"], credit["reference"]) == ("", "")
    fetched = await api.get(f"/api/v3/clients/{client['id']}")
    assert fetched.body == {
        **client,
        "unformated_balance": Decimal("20351822.92"),
        "balance": "20,351,822.92",
        "total_debit": "43,228,120.29",
        "total_credit": "22,876,297.37",
    }
    assert b'"unformated_balance":20351822.92,' in fetched.raw
    assert fetched.headers["ETag"] == '"3"'
    assert (await api.get("/api/v3/clients")).body == [fetched.body]


async def test_a_balance_below_zero_is_written_with_a_minus_sign(api: Api) -> None:
    """Proves a credit beyond the debits gives a negative balance, "-1,234.56" and
    -1234.56, and amounts keep their cents without trailing zeros, by one credit."""
    client = await api.create_client(business_name="In credit")
    reply = await api.post(
        f"/api/v3/clients/{client['id']}/transactions",
        {"type": "credit", "amount": "1234.50"},
    )
    assert b'"amount":1234.5,' in reply.raw
    assert b'"balance_after":-1234.5,' in reply.raw
    await api.post_transaction(client["id"], "credit", "0.06")
    fetched = (await api.get(f"/api/v3/clients/{client['id']}")).body
    assert fetched["unformated_balance"] == Decimal("-1234.56")
    assert (fetched["balance"], fetched["total_debit"], fetched["total_credit"]) == (
        "-1,234.56",
        "0.00",
        "1,234.56",
    )


async def test_the_largest_amount_is_accepted_and_written_exactly(api: Api) -> None:
    """Proves 999,999,999,999.99 (the upper bound) and 0.01 (the lower) are taken and
    come back digit for digit, by posting both and reading the raw JSON."""
    client = await api.create_client(business_name="Whale")
    reply = await api.post(
        f"/api/v3/clients/{client['id']}/transactions",
        {"type": "debit", "amount": 999999999999.99},
    )
    assert reply.status == 201
    assert b'"amount":999999999999.99,' in reply.raw
    smallest = await api.post_transaction(client["id"], "debit", 0.01)
    assert smallest["balance_after"] == Decimal("1000000000000")
    fetched = (await api.get(f"/api/v3/clients/{client['id']}")).body
    assert fetched["total_debit"] == "1,000,000,000,000.00"
    assert fetched["unformated_balance"] == 1_000_000_000_000


async def test_postings_do_not_move_updated_at_even_on_an_archived_client(
    api: Api,
) -> None:
    """Proves an archived client still takes postings and only profile changes move
    updated_at (as in the seed's samples), by archiving, posting and re-reading."""
    client = await api.create_client(business_name="Dormant")
    archived = (await api.post(f"/api/v3/clients/{client['id']}/archive")).body
    await api.post_transaction(client["id"], "debit", "10")
    await api.post_deposit(client["id"], "debit", "5")
    fetched = (await api.get(f"/api/v3/clients/{client['id']}")).body
    assert fetched["archived"] is True
    assert fetched["updated_at"] == archived["updated_at"]
    assert (fetched["balance"], fetched["deposit_amount"]) == ("10.00", 5)


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


async def test_deposits_fill_the_deposit_account_and_never_the_transactions(
    api: Api,
) -> None:
    """Proves a deposit debit raises deposit_amount (the seed's 50939 and 26602.6),
    the first one opens the deposit account (deposit_account_id null until then), and
    deposits leave the receivable balance and the statement alone, by posting two."""
    client = await api.create_client(business_name="Abdul Rashid Enterprise")
    assert client["deposit_account_id"] is None
    reply = await api.post(
        f"/api/v3/clients/{client['id']}/deposits",
        {
            "type": "debit",
            "amount": 50939,
            "description": "Prepayment",
            "reference": "x",
        },
    )
    assert reply.status == 201
    first = reply.body
    assert list(first) == DEPOSIT_FIELDS
    assert re.fullmatch(TIMESTAMP_PATTERN, first["created_at"])
    assert first == {
        "id": first["id"],
        "client_id": client["id"],
        "type": "debit",
        "amount": 50939,
        "date": first["created_at"][:10],  # the UTC day it was recorded
        "description": "Prepayment",
        "created_at": first["created_at"],
        "deposit_after": 50939,
        "reversed": False,
        "reversal_of": None,
    }
    opened = await api.get(f"/api/v3/clients/{client['id']}")
    account = opened.body["deposit_account_id"]
    assert isinstance(account, int) and account != client["account_id"]
    assert b'"deposit_amount":50939,' in opened.raw
    second = await api.post_deposit(client["id"], "debit", 26602.6)
    assert second["deposit_after"] == Decimal("77541.6")
    fetched = await api.get(f"/api/v3/clients/{client['id']}")
    assert fetched.body == {
        **client,
        "deposit_amount": Decimal("77541.6"),
        "deposit_account_id": account,
    }
    assert b'"deposit_amount":77541.6,' in fetched.raw
    statement = (await api.get(f"/api/v3/clients/{client['id']}/transactions")).body
    assert (statement["transactions"], statement["transactions_count"]) == ([], 0)
    listed = await api.get(f"/api/v3/clients/{client['id']}/deposits")
    assert (listed.status, listed.body) == (200, [first, second])
    other = await api.create_client(business_name="Other depositor")
    await api.post_deposit(other["id"], "debit", "1")
    other_account = (await api.get(f"/api/v3/clients/{other['id']}")).body
    assert other_account["deposit_account_id"] not in (None, account)


async def test_a_deposit_credit_may_use_the_deposit_but_never_overdraw_it(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves a credit beyond the deposit is a 422 on amount that writes nothing and a
    credit of all of it leaves zero with the deposit account kept, by posting both."""
    client = await api.create_client(business_name="Prepaid")
    overdraw = invalid({"amount": ["The amount may not be greater than the deposit."]})
    path = f"/api/v3/clients/{client['id']}/deposits"
    before = await event_count(admin_pool, business["business_id"])
    empty = await api.post(path, {"type": "credit", "amount": "0.01"})
    assert (empty.status, empty.body) == (422, overdraw)
    await api.post_deposit(client["id"], "debit", "100.10")
    beyond = await api.post(path, {"type": "credit", "amount": "100.11"})
    assert (beyond.status, beyond.body) == (422, overdraw)
    assert await event_count(admin_pool, business["business_id"]) == before + 1
    used = await api.post_deposit(client["id"], "credit", "100.10")
    assert used["deposit_after"] == 0
    fetched = (await api.get(f"/api/v3/clients/{client['id']}")).body
    assert fetched["deposit_amount"] == 0
    # The deposit account the first top-up opened, as both postings' events name it.
    accounts = await admin_pool.fetch(
        "SELECT DISTINCT (payload->>'deposit_account_id')::bigint AS id FROM events"
        " WHERE stream_id = $1 AND type = 'deposit.posted'",
        f"client-{client['id']}",
    )
    assert [row["id"] for row in accounts] == [fetched["deposit_account_id"]]


async def test_the_deposit_list_takes_a_period_with_running_totals(api: Api) -> None:
    """Proves GET /clients/{id}/deposits?from=&to= lists a period's deposits by date
    with the running deposit_after, back-dated ones included, by posting three."""
    client = await api.create_client(business_name="Saver")
    day = today()
    d1, d2 = day - dt.timedelta(days=9), day - dt.timedelta(days=3)
    late = await api.post_deposit(client["id"], "debit", "30", date=d2.isoformat())
    early = await api.post_deposit(client["id"], "debit", "20", date=d1.isoformat())
    assert early["deposit_after"] == 20
    used = await api.post_deposit(client["id"], "credit", "45")
    assert used["deposit_after"] == 5
    path = f"/api/v3/clients/{client['id']}/deposits"
    everything = await api.get(path)
    assert everything.body == [early, {**late, "deposit_after": 50}, used]
    period = await api.get(path, params={"from": d2.isoformat(), "to": d2.isoformat()})
    assert period.body == [{**late, "deposit_after": 50}]
    assert (await api.get(path, params={"to": d1.isoformat()})).body == [early]
