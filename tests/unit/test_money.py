"""Exact money: parsing input amounts into minor units and formatting them back."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.money import (
    AmountError,
    number_text,
    parse_amount,
    parse_signed_amount,
    to_number,
    to_text,
)


@pytest.mark.parametrize(
    ("value", "minor"),
    [
        (Decimal("1234.50"), 123450),
        ("1234.50", 123450),
        ("1,234.5", 123450),
        (7, 700),
        (Decimal("0.01"), 1),
        (Decimal("999999999999.99"), 99_999_999_999_999),
        (Decimal("1E+2"), 10000),
    ],
)
def test_valid_amounts_become_exact_minor_units(value: object, minor: int) -> None:
    """Numbers and numeric strings parse to the exact count of cents."""
    assert parse_amount(value) == minor


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Decimal("-1"), "must be greater than zero"),
        (0, "must be greater than zero"),
        ("0.00", "must be greater than zero"),
        (Decimal("1.001"), "must have at most two decimals"),
        ("NaN", "must be a finite number"),
        ("Infinity", "must be a finite number"),
        ("-Infinity", "must be a finite number"),
        (Decimal("NaN"), "must be a finite number"),
        (Decimal("-Infinity"), "must be a finite number"),
        ("-5", "must be greater than zero"),
        ("abc", "must be a number"),
        ("", "must be a number"),
        (True, "must be a number"),
        (None, "must be a number"),
        ([1], "must be a number"),
        (1.5, "must be a number with at most two decimals"),
        (Decimal("1000000000000.00"), "may not be greater than 999999999999.99"),
        (Decimal("1e999999999"), "may not be greater than 999999999999.99"),
        (Decimal("1e-999999999"), "must have at most two decimals"),
    ],
)
def test_invalid_amounts_are_refused_with_a_reason(value: object, message: str) -> None:
    """Every kind of bad amount raises AmountError saying what is wrong."""
    with pytest.raises(AmountError) as refused:
        parse_amount(value)
    assert str(refused.value) == message


def test_signed_amounts_allow_negative_and_zero() -> None:
    """Imports carry opening balances that may be negative or zero."""
    assert parse_signed_amount("-1,234.50") == -123450
    assert parse_signed_amount(Decimal("-0.01")) == -1
    assert parse_signed_amount(0) == 0
    assert parse_signed_amount("12") == 1200


@pytest.mark.parametrize(
    ("minor", "number"),
    [
        (2035182292, "20351822.92"),
        (5093900, "50939"),
        (2660260, "26602.6"),
        (0, "0"),
        (-123456, "-1234.56"),
        (-10, "-0.1"),
        (80518783189, "805187831.89"),
    ],
)
def test_minor_units_render_as_exact_numbers(minor: int, number: str) -> None:
    """Numbers are written from integer cents with no float artifact."""
    assert str(to_number(minor)) == number


@pytest.mark.parametrize(
    ("minor", "text"),
    [
        (2035182292, "20,351,822.92"),
        (4322812029, "43,228,120.29"),
        (0, "0.00"),
        (-123456, "-1,234.56"),
        (5, "0.05"),
    ],
)
def test_minor_units_render_as_the_seed_display_string(minor: int, text: str) -> None:
    """Display strings carry thousands separators and exactly two decimals."""
    assert to_text(minor) == text


def test_the_seed_balance_is_debits_minus_credits_exactly() -> None:
    """43,228,120.29 - 22,876,297.37 is exactly 20,351,822.92 in minor units."""
    balance = parse_amount("43228120.29") - parse_amount("22876297.37")
    assert to_text(balance) == "20,351,822.92"
    assert to_number(balance) == Decimal("20351822.92")


@pytest.mark.parametrize("text", ["1,2,3", "12,34.5", ",100", "1,0000"])
def test_commas_are_accepted_only_as_thousands_separators(text: str) -> None:
    """ "1,2,3" is not 123: a comma must separate groups of three digits."""
    with pytest.raises(AmountError) as refused:
        parse_amount(text)
    assert str(refused.value) == "must be a number"


@pytest.mark.parametrize(
    "text",
    ["1.000000000000000000000000000001", "0.0100000000000000000000000000001"],
)
def test_a_third_decimal_is_refused_however_far_out(text: str) -> None:
    """More than 28 significant digits must not be rounded away into a valid amount."""
    with pytest.raises(AmountError) as refused:
        parse_amount(text)
    assert str(refused.value) == "must have at most two decimals"


def test_trailing_zeros_beyond_two_decimals_are_exact() -> None:
    """1.2300000000000000000000000000000 is exactly 123 cents."""
    assert parse_amount("1.2300000000000000000000000000000") == 123


@pytest.mark.parametrize(
    "text", ["1_000", "١٢٣", "+5", "1e2", "1E+2", "１２", "1.2.3", "- 5", "0x10", "."]
)
def test_text_amounts_are_only_ascii_digits_one_point_and_thousands_commas(
    text: str,
) -> None:
    """Underscores, non-ASCII digits, a plus sign and exponents, all of which
    Decimal() reads as numbers, are refused as text amounts."""
    with pytest.raises(AmountError) as refused:
        parse_amount(text)
    assert str(refused.value) == "must be a number"


@pytest.mark.parametrize(
    ("text", "minor"),
    [("1000", 100000), (" 12.5 ", 1250), ("1,000.00", 100000), (".5", 50)],
)
def test_plain_text_amounts_still_parse(text: str, minor: int) -> None:
    """Digits, one point and thousands commas stay accepted, spaces around trimmed."""
    assert parse_amount(text) == minor


def test_signed_text_amounts_refuse_a_plus_sign_too() -> None:
    """The import's signed parser takes a leading minus, never "+5" or "-1e2"."""
    assert parse_signed_amount("-5") == -500
    for text in ("+5", "-1e2", "-١"):
        with pytest.raises(AmountError) as refused:
            parse_signed_amount(text)
        assert str(refused.value) == "must be a number"


def test_number_text_is_to_number_s_json_text() -> None:
    """number_text (the aging report's writer) against to_number, over edges and a
    sweep of cents and magnitudes."""
    values = [0, 1, 7, 10, 70, 99, 100, 101, 110, 5_093_900, 99_999_999_999_999]
    values += [n * 10**k + c for n in (1, 3, 12) for k in range(2, 14) for c in (0, 5)]
    for minor in values + [-v for v in values]:
        assert number_text(minor) == str(to_number(minor)), minor
