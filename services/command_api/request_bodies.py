"""Hop 1: request bodies to commands; every invalid field is reported, not only one.

Bodies arrive as JSON objects with numbers decoded as Decimal; unknown fields are
ignored (the original API's archive sample sends a whole client object).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

import msgspec

from shared import commands as c
from shared.errors import ValidationFailed
from shared.events import PROFILE_FIELDS
from shared.money import AMOUNT_MINOR_MAX, MINOR_PER_UNIT, AmountError, parse_amount

STRING_LENGTH_MAX = 255
AMOUNT_MAX = AMOUNT_MINOR_MAX / MINOR_PER_UNIT  # 999999999999.99, as the schema says it
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# [0-9], not \d: \d also matches digits such as "２" that no date is written with.
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
Body = dict[str, object]


# The bodies the functions below accept, as the OpenAPI document describes them
# (services/api_docs). The parsing stays here, field by field, so that every invalid
# field is reported; these only describe it. Strings may also be null (read as "").
Text = (
    Annotated[str, msgspec.Meta(max_length=STRING_LENGTH_MAX, pattern="^[^\\x00]*$")]
    | None
)
Name = Annotated[
    str,
    msgspec.Meta(
        max_length=STRING_LENGTH_MAX, pattern="^[^\\x00]*[^\\s\\x00][^\\x00]*$"
    ),
]
Email = Annotated[
    str,
    msgspec.Meta(max_length=STRING_LENGTH_MAX, extra_json_schema={"format": "email"}),
]
Identifier = int | Annotated[str, msgspec.Meta(pattern="^[0-9]{1,17}$")] | None


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

    archived: bool | None = None


class PostingInput(msgspec.Struct, kw_only=True):
    """A transaction or deposit posting. `amount`: a JSON number or a string such as
    "1,234.50", greater than zero, at most two decimals; `date` (YYYY-MM-DD, at most
    tomorrow, UTC) defaults to the UTC date of the posting's `created_at`. Deposits
    have no `reference`."""

    type: Literal["debit", "credit"]
    # A JSON number (decoded exactly, as Decimal: `float` only names the schema's
    # "number", msgspec allows one string-like type per union) or a string.
    amount: Annotated[float, msgspec.Meta(gt=0, le=AMOUNT_MAX)] | str
    date: dt.date | None = None
    description: Text = None
    reference: Text = None


class ReversalInput(msgspec.Struct, kw_only=True):
    reason: Text = None


class Errors:
    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    def raise_any(self) -> None:
        if self.by_field:
            raise ValidationFailed(self.by_field)


def _label(field: str) -> str:
    return field.replace("_", " ")


def text(
    body: Body, field: str, errors: Errors, *, required: bool = False
) -> str | None:
    """An optional string field: None when absent, "" for null."""
    if field not in body:
        if required:
            errors.add(field, f"The {_label(field)} field is required.")
        return None
    value = body[field]
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors.add(field, f"The {_label(field)} must be a string.")
        return None
    if len(value) > STRING_LENGTH_MAX:
        errors.add(
            field, f"The {_label(field)} may not be greater than 255 characters."
        )
        return None
    if "\x00" in value:
        # PostgreSQL's jsonb and text cannot hold U+0000: it would fail the whole
        # group-commit batch at the insert, so it is refused here, field by field.
        errors.add(field, f"The {_label(field)} may not contain null characters.")
        return None
    if required and not value.strip():
        errors.add(field, f"The {_label(field)} field is required.")
        return None
    if field == "business_email" and value and not _EMAIL.match(value):
        errors.add(field, f"The {_label(field)} must be a valid email address.")
        return None
    return value


def integer_id(value: object, field: str, errors: Errors) -> int | None:
    """An id given as an integer or a numeric string."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**62:
        return value
    digits = value.strip() if isinstance(value, str) else ""
    # isascii(): str.isdigit() also accepts characters such as "²" that int() refuses.
    if digits.isascii() and digits.isdigit() and len(digits) < 18:
        return int(digits)
    errors.add(field, f"The selected {_label(field)} is invalid.")
    return None


def _profile(body: Body, errors: Errors, *, creating: bool) -> dict[str, str]:
    values: dict[str, str] = {}
    for field in PROFILE_FIELDS:
        required = field == "business_name" and (creating or field in body)
        value = text(body, field, errors, required=required)
        if value is not None:
            values[field] = value.strip() if field == "business_name" else value
    return values


def create_client(body: Body, business_id: int) -> c.CreateClient:
    errors = Errors()
    profile = _profile(body, errors, creating=True)
    category_id = None
    if body.get("category_id") not in (None, ""):
        category_id = integer_id(body["category_id"], "category_id", errors)
    errors.raise_any()
    return c.CreateClient(business_id=business_id, category_id=category_id, **profile)


def update_client(
    body: Body, business_id: int, client_id: int, expected_version: int | None
) -> c.UpdateClient:
    errors = Errors()
    profile: dict[str, object] = dict(_profile(body, errors, creating=False))
    if body.get("category_id") not in (None, ""):
        profile["category_id"] = integer_id(body["category_id"], "category_id", errors)
    errors.raise_any()
    return c.UpdateClient(
        business_id=business_id,
        client_id=client_id,
        expected_version=expected_version,
        **profile,  # type: ignore[arg-type]
    )


def set_archived(body: Body, business_id: int, client_id: int) -> c.SetArchived:
    archived = body.get("archived")
    if archived is not None and not isinstance(archived, bool):
        raise ValidationFailed(
            {"archived": ["The archived field must be true or false."]}
        )
    return c.SetArchived(
        business_id=business_id, client_id=client_id, archived=archived
    )


def create_category(body: Body, business_id: int) -> c.CreateCategory:
    errors = Errors()
    name = text(body, "name", errors, required=True)
    description = text(body, "description", errors)
    errors.raise_any()
    assert name is not None
    return c.CreateCategory(
        business_id=business_id, name=name.strip(), description=description or ""
    )


class Posting(msgspec.Struct, frozen=True, kw_only=True):
    entry_type: str
    amount_minor: int
    date: dt.date | None  # None: the commit's UTC date (commands.stamped)
    description: str
    reference: str


def posting(body: Body, today: dt.date, *, with_reference: bool) -> Posting:
    """The fields shared by transactions and deposits, all checked at once."""
    errors = Errors()
    entry_type = body.get("type")
    if entry_type not in ("debit", "credit"):
        errors.add("type", "The type must be debit or credit.")
    amount_minor = 0
    if "amount" not in body or body["amount"] is None:
        errors.add("amount", "The amount field is required.")
    else:
        try:
            amount_minor = parse_amount(body["amount"])
        except AmountError as error:
            errors.add("amount", f"The amount {error}.")
    date = _date(body.get("date"), today, errors)
    description = text(body, "description", errors) or ""
    reference = (text(body, "reference", errors) or "") if with_reference else ""
    errors.raise_any()
    return Posting(
        entry_type=str(entry_type),
        amount_minor=amount_minor,
        date=date,
        description=description,
        reference=reference,
    )


def _date(value: object, today: dt.date, errors: Errors) -> dt.date | None:
    """The date given, or None for the default: the appender fills it from the
    instant it records, not this request's `today`, which only bounds the date."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        errors.add("date", "The date must be a date in the format YYYY-MM-DD.")
        return None
    try:
        date = dt.date.fromisoformat(value)
    except ValueError:
        errors.add("date", "The date is not a valid date.")
        return None
    if date > today + dt.timedelta(days=1):
        errors.add("date", "The date may not be later than tomorrow.")
    return date


def post_transaction(
    body: Body, business_id: int, client_id: int, today: dt.date
) -> c.PostTransaction:
    fields = posting(body, today, with_reference=True)
    return c.PostTransaction(
        business_id=business_id,
        client_id=client_id,
        entry_type="debit" if fields.entry_type == "debit" else "credit",
        amount_minor=fields.amount_minor,
        date=fields.date,
        description=fields.description,
        reference=fields.reference,
    )


def post_deposit(
    body: Body, business_id: int, client_id: int, today: dt.date
) -> c.PostDeposit:
    fields = posting(body, today, with_reference=False)
    return c.PostDeposit(
        business_id=business_id,
        client_id=client_id,
        entry_type="debit" if fields.entry_type == "debit" else "credit",
        amount_minor=fields.amount_minor,
        date=fields.date,
        description=fields.description,
    )


def reason(body: Body) -> str:
    """A reversal's optional `reason`: a string of at most 255 characters."""
    errors = Errors()
    value = text(body, "reason", errors) or ""
    errors.raise_any()
    return value
