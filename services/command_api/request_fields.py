"""Hop 1: the kinds of field a request body is made of, each described once.

Each kind is a type for the body structs of request_bodies.py: its msgspec part
(`msgspec.Meta`: length, pattern, range) is what the OpenAPI document says about the
field, and its `Reads` mark names the function that reads the field from a decoded
body and refuses it with the Laravel message the original API's clients parse. The
two sit side by side here, on the same constants, so the document and the
validation describe one field.

`read()` walks a body struct's fields and reads each one with its own function,
collecting every refusal before it raises: the 422 names every invalid field at once,
which msgspec's own decoding (it stops at the first error) cannot do. Bodies arrive
as JSON objects with numbers decoded as Decimal, and amounts become integer minor
units in shared/money.py, never floats.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec

from shared.errors import ValidationFailed
from shared.money import (
    AMOUNT_MINOR_MAX,
    MINOR_PER_UNIT,
    AmountError,
    parse_amount,
    parse_signed_amount,
)

STRING_LENGTH_MAX = 255
AMOUNT_MAX = AMOUNT_MINOR_MAX / MINOR_PER_UNIT  # 999999999999.99, as the schema says it
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# [0-9], not \d: \d also matches digits such as "２" that no date is written with.
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
Body = dict[str, object]


class Refused(Exception):
    """One field's refusal: the message its 422 lists under the field's name."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Field(msgspec.Struct, frozen=True, kw_only=True):
    """What a reader knows of the field it reads."""

    label: str  # the name as the messages write it: "business name"
    today: dt.date | None  # the request's UTC date, where a body has a date


class Reads(msgspec.Struct, frozen=True):
    """The mark in a field's type naming the function that reads it. A value that
    is absent reaches the function as msgspec.UNSET only when the field is
    required; an absent optional field takes its default unread."""

    function: Callable[[object, Field], object]


def text(value: object, field: Field) -> str:
    """A string of at most 255 characters; null reads as ""."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Refused(f"The {field.label} must be a string.")
    if len(value) > STRING_LENGTH_MAX:
        raise Refused(f"The {field.label} may not be greater than 255 characters.")
    if "\x00" in value:
        # PostgreSQL's jsonb and text cannot hold U+0000: it would fail the whole
        # group-commit batch at the insert, so it is refused here, field by field.
        raise Refused(f"The {field.label} may not contain null characters.")
    return value


def name(value: object, field: Field) -> str:
    """A text that is not blank, trimmed."""
    trimmed = "" if value is msgspec.UNSET else text(value, field).strip()
    if not trimmed:
        raise Refused(f"The {field.label} field is required.")
    return trimmed


def email(value: object, field: Field) -> str:
    """A text that is empty or looks like an e-mail address."""
    address = text(value, field)
    if address and not _EMAIL.match(address):
        raise Refused(f"The {field.label} must be a valid email address.")
    return address


def identifier(value: object, field: Field) -> int | None:
    """An id given as an integer or a numeric string; null or "" is no id."""
    if value in (None, ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**62:
        return value
    digits = value.strip() if isinstance(value, str) else ""
    # isascii(): str.isdigit() also accepts characters such as "²" that int() refuses.
    if digits.isascii() and digits.isdigit() and len(digits) < 18:
        return int(digits)
    raise Refused(f"The selected {field.label} is invalid.")


def flag(value: object, field: Field) -> bool | None:
    """true or false; null is no value."""
    if value is None or isinstance(value, bool):
        return value
    raise Refused(f"The {field.label} field must be true or false.")


def entry_type(value: object, field: Field) -> str:
    if value not in ("debit", "credit"):
        raise Refused(f"The {field.label} must be debit or credit.")
    return str(value)


def amount(value: object, field: Field) -> int:
    """The amount in integer minor units (shared/money.py: exact, never a float)."""
    return _money(value, field, parse_amount)


def signed_amount(value: object, field: Field) -> int:
    """An amount of either sign, or zero, in integer minor units (a line a balance
    may cross below zero)."""
    return _money(value, field, parse_signed_amount)


def _money(value: object, field: Field, parse: Callable[[object], int]) -> int:
    if value is msgspec.UNSET or value is None:
        raise Refused(f"The {field.label} field is required.")
    try:
        return parse(value)
    except AmountError as error:
        raise Refused(f"The {field.label} {error}.") from None


def posting_date(value: object, field: Field) -> dt.date | None:
    """The date given, or None for the default: the appender fills it from the
    instant it records, not this request's `today`, which only bounds the date."""
    assert field.today is not None, "a body with a date is read with today's date"
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise Refused(f"The {field.label} must be a date in the format YYYY-MM-DD.")
    try:
        date = dt.date.fromisoformat(value)
    except ValueError:
        raise Refused(f"The {field.label} is not a valid date.") from None
    if date > field.today + dt.timedelta(days=1):
        raise Refused(f"The {field.label} may not be later than tomorrow.")
    return date


# The kinds of field, as the body structs use them. Strings may also be null (read
# as ""); `float` only names the schema's "number" for an amount (the reader takes
# the Decimal the body decoder made, or a string).
Text = (
    Annotated[
        str,
        msgspec.Meta(max_length=STRING_LENGTH_MAX, pattern="^[^\\x00]*$"),
        Reads(text),
    ]
    | None
)
Name = Annotated[
    str,
    msgspec.Meta(
        max_length=STRING_LENGTH_MAX, pattern="^[^\\x00]*[^\\s\\x00][^\\x00]*$"
    ),
    Reads(name),
]
Email = Annotated[
    str,
    msgspec.Meta(max_length=STRING_LENGTH_MAX, extra_json_schema={"format": "email"}),
    Reads(email),
]
Identifier = Annotated[
    int | Annotated[str, msgspec.Meta(pattern="^[0-9]{1,17}$")] | None,
    Reads(identifier),
]
Flag = Annotated[bool | None, Reads(flag)]
EntryType = Annotated[Literal["debit", "credit"], Reads(entry_type)]
Amount = Annotated[
    Annotated[float, msgspec.Meta(gt=0, le=AMOUNT_MAX)] | str, Reads(amount)
]
PostingDate = Annotated[dt.date | None, Reads(posting_date)]


def read(
    struct: type[msgspec.Struct], body: Body, today: dt.date | None = None
) -> dict[str, Any]:
    """Each of the struct's fields read from the body by its own function, by name;
    every refusal is collected first, then raised together (422)."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for info, reads in _readers(struct):
        value = body.get(info.encode_name, msgspec.UNSET)
        if value is msgspec.UNSET and not info.required:
            values[info.name] = info.default
            continue
        field = Field(label=info.encode_name.replace("_", " "), today=today)
        try:
            values[info.name] = reads.function(value, field)
        except Refused as refusal:
            errors[info.encode_name] = [refusal.message]
    if errors:
        raise ValidationFailed(errors)
    return values


@functools.cache
def _readers(
    struct: type[msgspec.Struct],
) -> tuple[tuple[msgspec.structs.FieldInfo, Reads], ...]:
    """The struct's fields with their Reads marks (looked up once per struct)."""
    readers = []
    for info in msgspec.structs.fields(struct):
        marks = [mark for mark in _marks(info.type) if isinstance(mark, Reads)]
        assert len(marks) == 1, f"{struct.__name__}.{info.name}: one Reads mark"
        readers.append((info, marks[0]))
    return tuple(readers)


def _marks(annotation: object) -> list[object]:
    """The Annotated metadata in a type, its unions' members included."""
    if typing.get_origin(annotation) is Annotated:
        inner, *metadata = typing.get_args(annotation)
        return [*metadata, *_marks(inner)]
    return [mark for member in typing.get_args(annotation) for mark in _marks(member)]
