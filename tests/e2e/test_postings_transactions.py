"""Transactions end to end, with the seed's sample figures: debits raise and
credits lower the balance, exactly, at the bounds and below zero."""

from __future__ import annotations

import re
from decimal import Decimal

from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import TIMESTAMP_PATTERN, TRANSACTION_FIELDS


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
