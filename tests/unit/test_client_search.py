"""The search condition's pure parts (services/query_api/client_search.py): which text
counts as a phone number, the digits looked for, and when the trigram index serves."""

from __future__ import annotations

from services.query_api.client_search import condition, indexed, searched_digits


def test_only_digits_with_spaces_and_punctuation_are_looked_for_as_a_phone() -> None:
    """Given texts written as phone numbers are and others, only the former have
    digits to look for, normalised as the stored numbers are."""
    assert searched_digits("+233 (0)24 412-3456") == "233244123456"
    assert searched_digits("00233 24") == "23324"
    assert searched_digits("024.412/3456") == "0244123456"
    assert searched_digits("412 345") == "412345"
    assert searched_digits("kwame 024") is None
    assert searched_digits("+-()") is None
    assert searched_digits("٠٢٤") is None  # digits of another script: text only


def test_digits_that_are_only_a_prefix_are_looked_for_as_written() -> None:
    """Given "0", "233" or "+233", the digits are looked for as typed (every
    number's stored forms hold them)."""
    assert [searched_digits(text) for text in ("0", "233", "+233", "00")] == [
        "0",
        "233",
        "233",
        None,
    ]
    # A fragment from inside a number is looked for as typed; only a search dialled
    # internationally (+ or 00) has its country code read.
    assert searched_digits("2330 455") == "2330455"
    assert searched_digits("0044 20 7946") == "44207946"


def test_a_search_is_looked_up_by_trigram_by_pair_or_read_from_the_rows() -> None:
    """Given searches of every length, text and phone digits: three letters or digits
    in a row use LIKE (the trigram index), two characters the pairs index, one
    character strpos alone (it reads the business's rows)."""
    assert [indexed(text) for text in ("kwame", "jo", "a b", "a", "0244", "+2 4")] == [
        True,
        True,
        True,
        False,
        True,
        True,
    ]
    assert not indexed("7")
    sql, args = condition("024", 4)
    assert "c.search_text LIKE" in sql and "c.search_phones LIKE" in sql
    assert args == ["024", "024"]
    sql, args = condition("24", 4)
    assert "public.ledger_pairs(c.search_text) @>" in sql
    phones = "public.ledger_pairs(c.search_phones) @> public.ledger_pairs($5::text)"
    assert phones in sql
    assert args == ["24", "24"]
    sql, args = condition("jo", 4)
    assert sql.startswith(" AND (public.ledger_pairs(c.search_text) @>")
    assert args == ["jo"]
    sql, args = condition("j", 4)
    assert sql == " AND strpos(c.search_text, public.ledger_fold($4::text)) > 0"
    sql, args = condition("2", 4)
    assert sql.endswith("OR strpos(c.search_phones, $5::text) > 0)")
