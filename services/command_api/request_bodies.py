"""Hop 1: request bodies to commands; every invalid field is reported, not only one.

Each body is described once, by the struct below: the OpenAPI document takes its
schema from it (services/command_api/operations.py), and `request_fields.read`
validates a decoded body against it, field by field with each field's own reader, so
that every invalid field is reported together. A struct's attribute names are its
command's fields (`msgspec.field(name=...)` gives the body's name where the two
differ), so what is read becomes the command as it is. Unknown fields are ignored
(the original API's archive sample sends a whole client object).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from services.command_api.request_fields import (
    Amount,
    Body,
    Email,
    EntryType,
    Flag,
    Identifier,
    Name,
    PostingDate,
    Text,
    read,
)
from shared import commands as c


class ClientFields(msgspec.Struct, kw_only=True):
    """A client's fields (those given are changed). Unknown fields are ignored.
    `category_id`: one of the business's categories, an integer or a numeric
    string."""

    first_name: Text = None
    last_name: Text = None
    phone_number: Text = None
    business_name: Name | None = None
    business_address: Text = None
    business_phone: Text = None
    business_location: Text = None
    business_email: Email | None = None
    category_id: Identifier = None


class NewClient(ClientFields, kw_only=True):
    """A new client: only `business_name` is required; the category defaults to
    "Uncategorised"."""

    business_name: Name


class CategoryInput(msgspec.Struct, kw_only=True):
    name: Name
    description: Text = None


class ArchiveInput(msgspec.Struct, kw_only=True):
    """`archived` sets the flag; absent or null toggles it (`{}` archives an
    unarchived client and unarchives an archived one)."""

    archived: Flag = None


class EraseInput(msgspec.Struct, kw_only=True):
    """Nothing to give: `{}` or an empty body (unknown fields are ignored)."""


class DepositInput(msgspec.Struct, kw_only=True):
    """A deposit posting. `amount`: a JSON number or a string such as "1,234.50",
    greater than zero, at most two decimals; `date` (YYYY-MM-DD, at most tomorrow,
    UTC) defaults to the UTC date of the posting's `created_at`."""

    entry_type: EntryType = msgspec.field(name="type")
    amount_minor: Amount = msgspec.field(name="amount")
    date: PostingDate = None
    description: Text = None


class PostingInput(DepositInput, kw_only=True):
    """A transaction posting: a deposit posting's fields (DepositInput says what
    `amount` and `date` take) and a `reference`."""

    reference: Text = None


class ReversalInput(msgspec.Struct, kw_only=True):
    reason: Text = None


def _given(values: dict[str, Any]) -> dict[str, Any]:
    """The values the body gave (None: absent, or no category), by the command's
    names: each command's defaults stand for the rest."""
    return {field: value for field, value in values.items() if value is not None}


def create_client(body: Body, business_id: int) -> c.CreateClient:
    return c.CreateClient(business_id=business_id, **_given(read(NewClient, body)))


def update_client(
    body: Body, business_id: int, client_id: int, expected_version: int | None
) -> c.UpdateClient:
    return c.UpdateClient(
        business_id=business_id,
        client_id=client_id,
        expected_version=expected_version,
        **_given(read(ClientFields, body)),
    )


def set_archived(body: Body, business_id: int, client_id: int) -> c.SetArchived:
    values = _given(read(ArchiveInput, body))
    return c.SetArchived(business_id=business_id, client_id=client_id, **values)


def create_category(body: Body, business_id: int) -> c.CreateCategory:
    values = _given(read(CategoryInput, body))
    return c.CreateCategory(business_id=business_id, **values)


def post_transaction(
    body: Body, business_id: int, client_id: int, today: dt.date
) -> c.PostTransaction:
    values = _given(read(PostingInput, body, today))
    return c.PostTransaction(business_id=business_id, client_id=client_id, **values)


def post_deposit(
    body: Body, business_id: int, client_id: int, today: dt.date
) -> c.PostDeposit:
    values = _given(read(DepositInput, body, today))
    return c.PostDeposit(business_id=business_id, client_id=client_id, **values)


def reason(body: Body) -> str:
    """A reversal's optional `reason`: a string of at most 255 characters."""
    given: str | None = read(ReversalInput, body)["reason"]
    return given or ""
