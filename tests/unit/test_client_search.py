"""The search condition's pure parts (services/query_api/client_search.py): which text
counts as a phone number, the digits looked for, and when the trigram index serves."""

from __future__ import annotations

from services.query_api.client_search import condition, indexed, searched_digits


def test_only_digits_with_spaces_and_punctuation_are_looked_for_as_a_phone() -> None:
    """Given texts written as phone numbers are and others, only the former have
    digits to look for, normalised as the stored numbers are."""
    assert searched_digits("+233 (0)24 412-3456") == "244123456"
    assert searched_digits("024.412/3456") == "244123456"
    assert searched_digits("412 345") == "412345"
    assert searched_digits("kwame 024") is None
    assert searched_digits("+-()") is None
    assert searched_digits("٠٢٤") is None  # digits of another script: text only


def test_digits_that_are_only_a_prefix_are_looked_for_as_written() -> None:
    """Given "0", "233" or "+233", the digits are kept: stripped, they would be
    empty and every number would match."""
    assert [searched_digits(text) for text in ("0", "233", "+233", "00")] == [
        "0",
        "233",
        "233",
        "00",
    ]


def test_a_search_without_three_letters_or_digits_in_a_row_is_not_indexed() -> None:
    """Given searches with and without a trigram (in the text and in the phone
    digits), only those with one in each part use LIKE (the index); the others use
    strpos, which reads the rows instead of the whole index."""
    assert [indexed(text) for text in ("kwame", "jo", "a b", "a_b", "0244", "024")] == [
        True,
        False,
        False,
        False,
        True,
        False,
    ]
    sql, args = condition("024", 4)
    assert "c.search_text LIKE" in sql
    assert "strpos(c.search_phones, $5::text)" in sql
    assert args == ["024", "24"]
    sql, args = condition("jo", 4)
    assert sql == " AND strpos(c.search_text, public.ledger_fold($4::text)) > 0"
    assert args == ["jo"]
