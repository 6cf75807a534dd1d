"""Exact money: parse input amounts to integer minor units, format them back.

Every amount inside the service is an `int` of minor units (cents). Input arrives as a
JSON number (decoded as Decimal, never float) or a string such as "1234.50"; output is
a Decimal written from integer cents, so no float artifact can appear.
"""

from __future__ import annotations

import re
from decimal import Decimal

AMOUNT_MINOR_MIN = 1
AMOUNT_MINOR_MAX = 99_999_999_999_999  # 999,999,999,999.99: exact in a JS number
MINOR_PER_UNIT = 100


class AmountError(ValueError):
    """The amount is not a positive number with at most two decimals in range."""


def parse_amount(value: object) -> int:
    """Return the amount in minor units, or raise AmountError saying why."""
    if isinstance(value, bool) or value is None:
        raise AmountError("must be a number")
    if isinstance(value, float):
        # Never produced by our decoders (they decode JSON numbers as Decimal).
        raise AmountError("must be a number with at most two decimals")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        number = _decimal_from_text(value)
    else:
        raise AmountError("must be a number")
    return _minor_units(number)


def parse_signed_amount(value: object) -> int:
    """Like parse_amount, but zero and negative amounts are allowed (imports).

    Text is checked against the amount pattern first, so one leading "-" is a sign
    and "--5" is refused (stripping signs one by one turned it into +5), and "0" or
    "0.00" mean zero as the numeric cell 0 does. Decimals are negated with
    copy_negate(), which never rounds (unary minus rounds to the context's digits)."""
    if isinstance(value, str):
        value = _decimal_from_text(value)
    if isinstance(value, Decimal) and value.is_finite() and value.is_signed():
        return -parse_signed_amount(value.copy_negate())
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return -parse_signed_amount(-value)
    if isinstance(value, Decimal | int) and not isinstance(value, bool) and value == 0:
        return 0
    return parse_amount(value)


# The only text an amount may be: ASCII digits, commas only between groups of three,
# one "." and a leading "-" (refused later as "must be greater than zero", the reason
# a caller can act on). Decimal() alone also takes "1_000", "١٢٣", "+5", "1e2" and
# "NaN", none of which a person types as an amount.
_AMOUNT_TEXT = re.compile(
    r"-?(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.[0-9]*)?|-?\.[0-9]+", re.ASCII
)

_NOT_FINITE = ("nan", "snan", "inf", "infinity")


def _decimal_from_text(text: str) -> Decimal:
    stripped = text.strip()
    if not _AMOUNT_TEXT.fullmatch(stripped):
        if stripped.lstrip("+-").lower() in _NOT_FINITE:
            raise AmountError("must be a finite number")  # the more useful reason
        raise AmountError("must be a number")
    return Decimal(stripped.replace(",", ""))


def _minor_units(number: Decimal) -> int:
    if not number.is_finite():
        raise AmountError("must be a finite number")
    if number.is_zero():
        raise AmountError("must be greater than zero")
    if number.adjusted() > 20:  # checked before arithmetic, which would overflow
        raise AmountError("may not be greater than 999999999999.99")
    if number.adjusted() < -20:
        raise AmountError("must have at most two decimals")
    minor = _exact_cents(number)
    if minor < AMOUNT_MINOR_MIN:
        raise AmountError("must be greater than zero")
    if minor > AMOUNT_MINOR_MAX:
        raise AmountError("may not be greater than 999999999999.99")
    return minor


def _exact_cents(number: Decimal) -> int:
    """The number times 100 as an int, exactly, from its digits: Decimal arithmetic
    would round to the context's 28 significant digits and accept 1.000…0001."""
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    shift = exponent + 2  # the power of ten of the last digit, in cents
    if shift < 0:
        dropped = digits[shift:]
        if any(dropped):
            raise AmountError("must have at most two decimals")
        digits, shift = digits[:shift], 0
    magnitude = int("".join(map(str, digits)) + "0" * shift or "0")
    return -magnitude if sign else magnitude


def to_number(minor: int) -> Decimal:
    """Minor units as an exact JSON number with no trailing zeros: 5093900 -> 50939."""
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), MINOR_PER_UNIT)
    if cents == 0:
        return Decimal(f"{sign}{units}")
    return Decimal(f"{sign}{units}.{cents:02d}".rstrip("0"))


def number_text(minor: int) -> str:
    """to_number's JSON text, without making a Decimal (a report writes 700,000,
    most of them 0)."""
    if minor == 0:
        return "0"
    units, cents = divmod(abs(minor), MINOR_PER_UNIT)
    sign = "-" if minor < 0 else ""
    if cents == 0:
        return f"{sign}{units}"
    return f"{sign}{units}.{cents:02d}".rstrip("0")


def to_text(minor: int) -> str:
    """Minor units as the seed's display string: 2035182292 -> "20,351,822.92"."""
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), MINOR_PER_UNIT)
    return f"{sign}{units:,}.{cents:02d}"
