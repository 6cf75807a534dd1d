"""Deposits end to end, with the seed's sample figures: they fill the deposit
account, never the transactions, are never overdrawn, and list by period."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import asyncpg

from tests.e2e.ledger_api import Api, today
from tests.e2e.seed_shapes import DEPOSIT_FIELDS, TIMESTAMP_PATTERN, invalid
from tests.e2e.supervisor import event_count


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
