"""The spreadsheet rows as validated before anything is written: pure functions over
cell values as openpyxl yields them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.command_api.spreadsheets.excel_import import ImportRow, validate
from shared.errors import ValidationFailed

HEADER = (" NAME ", "Phone Number", "Unpaid Amount", "Deposit Amount", "Archived")


def rows(*data: tuple[object, ...]) -> list[ImportRow]:
    return validate(iter([HEADER, *data]), set())


def errors(*data: tuple[object, ...]) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as refused:
        rows(*data)
    return refused.value.errors


@pytest.mark.parametrize(
    "cell, minor",
    [
        (1234.5, 123450),
        (0.0, 0),
        (19.99, 1999),
        ("1,234.50", 123450),
        (" -20.05 ", -2005),
        (Decimal("7.1"), 710),
        (12, 1200),
        (None, 0),
        ("", 0),
    ],
)
def test_amount_cells_become_exact_minor_units(cell: object, minor: int) -> None:
    """Numbers go Decimal(str(value)) and text may group thousands; empty is zero."""
    [row] = rows(("Ama", None, cell, None, None))
    assert row.unpaid_minor == minor


@pytest.mark.parametrize("cell", [1.005, "12,34", "abc", True, "1e400"])
def test_an_amount_that_is_not_exact_to_the_cent_is_refused(cell: object) -> None:
    """Three decimals, misplaced commas, words, booleans and huge numbers are errors."""
    assert list(errors(("Ama", None, cell, None, None))) == ["row 2: Unpaid Amount"]


def test_archived_accepts_yes_no_true_false_in_any_case() -> None:
    """Archived reads yes/no/true/false ignoring case, and a boolean cell as is."""
    flags = [
        row.archived
        for row in rows(
            ("A", None, None, None, "Yes"),
            ("B", None, None, None, "no"),
            ("C", None, None, None, True),
            ("D", None, None, None, "FALSE"),
        )
    ]
    assert flags == [True, False, True, False]
    assert errors(("E", None, None, None, "maybe")) == {
        "row 2: Archived": ["must be yes or no"]
    }


def test_a_phone_number_typed_as_a_number_keeps_its_digits() -> None:
    """A numeric phone cell reads as its digits, never as 244000001.0."""
    [row] = rows(("Ama", 244000001.0, None, None, None))
    assert row.business_phone == "244000001"


def test_empty_rows_are_skipped_and_row_numbers_stay_the_sheets() -> None:
    """Blank rows are skipped, and errors name the spreadsheet's own row numbers."""
    assert errors(("Ama",), (None, None), ("  ", "024"), ("Kofi", None, "x")) == {
        "row 4: NAME": ["is required"],
        "row 5: Unpaid Amount": ["must be a number with at most two decimals"],
    }


def test_blank_rows_count_against_their_bound() -> None:
    """Two blank rows pass a bound of two; a third, even before data, is refused."""
    two = iter([HEADER, (None,), ("",), ("Ama",)])
    assert [row.row_number for row in validate(two, set(), 2)] == [4]
    three = iter([HEADER, (None,), ("",), (" ",), ("Ama",)])
    with pytest.raises(ValidationFailed) as refused:
        validate(three, set(), 2)
    message = "The sheet has more than 2 blank rows"
    assert refused.value.errors == {"customers": [message]}
