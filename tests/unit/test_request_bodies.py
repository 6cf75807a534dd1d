"""Each request body is described once: the struct the OpenAPI document shows is the
one the validation reads, field by field, reporting every invalid field at once."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from services.command_api import request_bodies as bodies
from services.command_api.request_fields import read
from shared import commands as c
from shared.errors import ValidationFailed

TODAY = dt.date(2024, 5, 10)
BODIES = [
    bodies.NewClient,
    bodies.ClientFields,
    bodies.CategoryInput,
    bodies.ArchiveInput,
    bodies.DepositInput,
    bodies.PostingInput,
    bodies.ReversalInput,
]


def errors_of(struct: type[msgspec.Struct], body: dict[str, object]) -> Any:
    with pytest.raises(ValidationFailed) as refused:
        read(struct, body, TODAY)
    return refused.value.errors


@pytest.mark.parametrize("struct", BODIES)
def test_the_fields_read_are_the_fields_the_schema_lists(
    struct: type[msgspec.Struct],
) -> None:
    """A body of wrong types in every field its schema lists is refused on exactly
    those fields, in the schema's order: the validation reads what the document
    says, no more and no less."""
    (schema,) = msgspec.json.schema_components([struct])[1].values()
    listed = list(schema["properties"])
    wrong: dict[str, object] = {field: ["not", "this"] for field in listed}
    assert list(errors_of(struct, wrong)) == listed


def test_every_invalid_field_of_a_posting_is_reported_at_once() -> None:
    """Five wrong fields give five messages, the ones the original API's clients
    parse, in the body's order."""
    body = {
        "type": "gift",
        "amount": "-1",
        "date": "2024-02-30",
        "description": 5,
        "reference": "r" * 256,
    }
    assert errors_of(bodies.PostingInput, body) == {
        "type": ["The type must be debit or credit."],
        "amount": ["The amount must be greater than zero."],
        "date": ["The date is not a valid date."],
        "description": ["The description must be a string."],
        "reference": ["The reference may not be greater than 255 characters."],
    }


def test_required_fields_and_their_messages() -> None:
    """An absent required field is named with its own message; a blank name counts
    as absent, and a date after tomorrow is refused."""
    assert errors_of(bodies.NewClient, {"business_name": "  "}) == {
        "business_name": ["The business name field is required."]
    }
    assert errors_of(bodies.CategoryInput, {}) == {
        "name": ["The name field is required."]
    }
    assert errors_of(bodies.DepositInput, {"date": "2024-05-12"}) == {
        "type": ["The type must be debit or credit."],
        "amount": ["The amount field is required."],
        "date": ["The date may not be later than tomorrow."],
    }


def test_amounts_become_exact_integer_minor_units() -> None:
    """Decimals from the JSON decoder, integers and text amounts become ints of
    cents, exactly, up to the largest amount."""
    for amount, minor in (
        (Decimal("0.30"), 30),
        ("1,234.50", 123450),
        (Decimal("999999999999.99"), 99_999_999_999_999),
        (7, 700),
    ):
        posted = bodies.post_transaction(
            {"type": "credit", "amount": amount}, 1, 2, TODAY
        )
        assert posted.amount_minor == minor
        assert type(posted.amount_minor) is int


def test_a_deposit_ignores_a_reference_a_transaction_checks() -> None:
    """Deposits have no reference (DepositInput has none): a long one is ignored
    there, as any unknown field is, and refused on a transaction."""
    body = {"type": "debit", "amount": "5", "reference": "r" * 300}
    deposit = bodies.post_deposit(body, 1, 2, TODAY)
    assert deposit == c.PostDeposit(
        business_id=1, client_id=2, entry_type="debit", amount_minor=500
    )
    with pytest.raises(ValidationFailed):
        bodies.post_transaction(body, 1, 2, TODAY)


def test_commands_take_only_the_fields_given() -> None:
    """An update changes only what the body names (the rest stays unset); null text
    reads as "", null or "" category as none, and a name is trimmed."""
    update = bodies.update_client(
        {"last_name": None, "business_name": " Acme ", "category_id": ""}, 1, 2, 3
    )
    assert update == c.UpdateClient(
        business_id=1,
        client_id=2,
        expected_version=3,
        last_name="",
        business_name="Acme",
    )
    created = bodies.create_client({"business_name": "A", "category_id": " 12 "}, 1)
    assert created == c.CreateClient(business_id=1, business_name="A", category_id=12)
    assert bodies.set_archived({}, 1, 2).archived is None
    assert bodies.reason({"reason": None}) == ""
