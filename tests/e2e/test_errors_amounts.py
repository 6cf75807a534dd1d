"""Refusals end to end, the amount and type of a posting: each invalid one is a
Laravel-style 422 naming its field and writing nothing, and every invalid field of a
body is reported at once."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import invalid
from tests.e2e.supervisor import event_count

JSON = {"Content-Type": "application/json"}
GREATER_THAN_ZERO = "The amount must be greater than zero."
TWO_DECIMALS = "The amount must have at most two decimals."
FINITE = "The amount must be a finite number."
NUMBER = "The amount must be a number."
TOO_LARGE = "The amount may not be greater than 999999999999.99."
REQUIRED = "The amount field is required."
# The amount exactly as it travels in the JSON body, and the one error it must give.
BAD_AMOUNTS = [
    ("-5", GREATER_THAN_ZERO),
    ("-0.01", GREATER_THAN_ZERO),
    ('"-12.50"', GREATER_THAN_ZERO),
    ("0", GREATER_THAN_ZERO),
    ("0.00", GREATER_THAN_ZERO),
    ('"0"', GREATER_THAN_ZERO),
    ("-0", GREATER_THAN_ZERO),
    ("1.005", TWO_DECIMALS),
    ('"1.005"', TWO_DECIMALS),
    ("0.001", TWO_DECIMALS),
    ("1e-400", TWO_DECIMALS),
    ('"NaN"', FINITE),
    ('"nan"', FINITE),
    ('"sNaN"', FINITE),
    ('"Infinity"', FINITE),
    ('"-Infinity"', FINITE),
    ('"inf"', FINITE),
    ('"abc"', NUMBER),
    ('"12abc"', NUMBER),
    ('""', NUMBER),
    ('"0x10"', NUMBER),
    ("true", NUMBER),
    ("[1]", NUMBER),
    ('{"value": 1}', NUMBER),
    ("1000000000000.00", TOO_LARGE),
    ('"1000000000000"', TOO_LARGE),
    ("999999999999.991", TWO_DECIMALS),
    ("1e400", TOO_LARGE),
    ("1" + "0" * 400, TOO_LARGE),
    ("null", REQUIRED),
]


async def test_every_bad_amount_is_a_422_on_amount_and_writes_nothing(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves negative, zero, three-decimal, NaN, infinite, non-numeric and
    out-of-range amounts (as JSON numbers and strings) are each a 422 naming only
    `amount`, on transactions and deposits, and none appends an event, by posting
    each raw JSON body and counting the business's events."""
    client = await api.create_client(business_name="Target")
    before = await event_count(admin_pool, business["business_id"])
    for route in ("transactions", "deposits"):
        path = f"/api/v3/clients/{client['id']}/{route}"
        for amount, message in BAD_AMOUNTS:
            raw = f'{{"type": "debit", "amount": {amount}}}'
            reply = await api.request("POST", path, data=raw, headers=JSON)
            assert (reply.status, reply.body) == (
                422,
                invalid({"amount": [message]}),
            ), (route, amount)
        missing = await api.post(path, {"type": "debit"})
        assert missing.body == invalid({"amount": [REQUIRED]})
    assert await event_count(admin_pool, business["business_id"]) == before
    fetched = (await api.get(f"/api/v3/clients/{client['id']}")).body
    assert (fetched["balance"], fetched["deposit_amount"]) == ("0.00", 0)


async def test_type_must_be_debit_or_credit(api: Api) -> None:
    """Proves a posting's type is one of the two words, exactly, by posting others."""
    client = await api.create_client(business_name="Typed")
    for route in ("transactions", "deposits"):
        for body in (
            {"amount": "1"},
            {"type": "DEBIT", "amount": "1"},
            {"type": "refund", "amount": "1"},
            {"type": 1, "amount": "1"},
            {"type": None, "amount": "1"},
        ):
            reply = await api.post(f"/api/v3/clients/{client['id']}/{route}", body)
            assert (reply.status, reply.body) == (
                422,
                invalid({"type": ["The type must be debit or credit."]}),
            ), (route, body)


async def test_every_invalid_field_is_reported_at_once(api: Api) -> None:
    """Proves validation reports all invalid fields together (not just the first), by
    posting a transaction that is wrong in all five fields."""
    client = await api.create_client(business_name="Everything wrong")
    reply = await api.post(
        f"/api/v3/clients/{client['id']}/transactions",
        {
            "type": "gift",
            "amount": "-1",
            "date": "2024-02-30",
            "description": 5,
            "reference": "r" * 256,
        },
    )
    assert reply.status == 422
    assert reply.body == invalid(
        {
            "type": ["The type must be debit or credit."],
            "amount": [GREATER_THAN_ZERO],
            "date": ["The date is not a valid date."],
            "description": ["The description must be a string."],
            "reference": ["The reference may not be greater than 255 characters."],
        }
    )
    created = await api.post(
        "/api/v3/clients",
        {"business_name": "", "business_email": "x", "first_name": ["a"]},
    )
    assert created.body == invalid(
        {
            "first_name": ["The first name must be a string."],
            "business_name": ["The business name field is required."],
            "business_email": ["The business email must be a valid email address."],
        }
    )
