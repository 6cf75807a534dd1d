"""The import's signed amounts (shared/money.parse_signed_amount): one sign at most,
zero in any spelling is zero, and negation never rounds."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.money import AmountError, parse_signed_amount


@pytest.mark.parametrize("text", ["--5", "-−5", "- 5", "-", "-+5", "+-5"])
def test_a_second_sign_is_refused(text: str) -> None:
    """Given text with two signs (or a sign alone), the parser refuses it as not a
    number instead of reading "--5" as +5.00."""
    with pytest.raises(AmountError) as refused:
        parse_signed_amount(text)
    assert str(refused.value) == "must be a number"


@pytest.mark.parametrize(
    "value", ["0", "0.00", "-0", " 0.0 ", "0,000.00", Decimal("-0"), 0, Decimal("0.00")]
)
def test_zero_in_any_spelling_is_zero(value: object) -> None:
    """Given zero as text or number, the parser answers 0 (the import posts nothing)."""
    assert parse_signed_amount(value) == 0


def test_negating_a_long_decimal_does_not_round_it_into_range() -> None:
    """Given -1.0000000000000000000000000001 (29 digits), the parser refuses it:
    unary minus would round it to 28 digits, -1.00, and accept it."""
    with pytest.raises(AmountError) as refused:
        parse_signed_amount(Decimal("-1.0000000000000000000000000001"))
    assert str(refused.value) == "must have at most two decimals"
    assert parse_signed_amount("-999,999,999,999.99") == -99_999_999_999_999
