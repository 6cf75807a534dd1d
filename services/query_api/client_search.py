"""The client list's `search`: what it matches and the SQL condition it adds.

The read model stores what a search compares (projections/balances/0003_search.sql):
`search_text`, the names and the e-mail address folded by `public.ledger_fold`
(accents off, lower case), and `search_phones`, both phone numbers each written the
two ways people dial them by `public.ledger_phone_forms` ("0244123456 233244123456").
A search is a substring of either, found through the GIN trigram index on both.
"""

from __future__ import annotations

import re

# The user's text folded in PostgreSQL exactly as the stored column was, then its LIKE
# wildcards escaped (backslash is LIKE's default escape): escaped after the folding,
# because unaccent turns the full-width ％ ＿ ＼ into % _ \.
_TEXT_LIKE = (
    r"c.search_text LIKE '%' || replace(replace(replace(public.ledger_fold(${n}::text),"
    r" '\', '\\'), '%', '\%'), '_', '\_') || '%'"
)
# A search with no trigram to look up (fewer than three letters or digits in a row)
# could only read the whole GIN index (pg_trgm's "match all"), slower than reading
# the business's rows: written with strpos, which no index serves, the planner reads
# the rows instead. strpos and LIKE '%…%' without wildcards find the same rows.
_TEXT_STRPOS = "strpos(c.search_text, public.ledger_fold(${n}::text)) > 0"
_PHONES_LIKE = "c.search_phones LIKE '%' || ${n}::text || '%'"
_PHONES_STRPOS = "strpos(c.search_phones, ${n}::text) > 0"
# Two characters have no trigram but one pair: looked up in rm_clients_search_pairs,
# then checked with strpos (the pairs of a folded text longer than two all present
# is not yet a substring).
_TEXT_PAIRS = (
    "(public.ledger_pairs(c.search_text)"
    " @> public.ledger_pairs(public.ledger_fold(${n}::text))"
    " AND strpos(c.search_text, public.ledger_fold(${n}::text)) > 0)"
)
_PHONES_PAIRS = (
    "(public.ledger_pairs(c.search_phones) @> public.ledger_pairs(${n}::text)"
    " AND strpos(c.search_phones, ${n}::text) > 0)"
)
_PAIR = 2
# Three letters or digits in a row: pg_trgm has a trigram of the text to look up.
_TRIGRAM = re.compile(r"[^\W_]{3}")
_TRIGRAM_DIGITS = 3
# What a phone number may be written with besides digits: spaces and punctuation.
_PHONE_LIKE = re.compile(r"[0-9\s+\-().\/]*[0-9][0-9\s+\-().\/]*")
_NOT_DIGITS = re.compile(r"[^0-9]+")
# A search dialled internationally ("+233 (0)24", "00233 24"): the stored
# international form has the country code bare, with no trunk 0 after it.
_TRUNK_AFTER_CODE = re.compile(r"^2330")


def searched_digits(text: str) -> str | None:
    """The digits to look for in the stored forms ("0244123456 233244123456"), or
    None when `text` is not written as a phone number is: the digits as typed, but
    for a search dialled internationally (with + or 00) the country code as the
    international form has it ("00233 24" and "+233 (0)24" look for "23324"). A
    fragment from inside a number ("2330 455") is looked for as typed."""
    if not _PHONE_LIKE.fullmatch(text):
        return None
    digits = _NOT_DIGITS.sub("", text)
    if text.startswith("+") or digits.startswith("00"):
        digits = _TRUNK_AFTER_CODE.sub("233", digits.removeprefix("00"), count=1)
    return digits or None  # "00" alone: no digit left to look for


def indexed(search: str) -> bool:
    """Whether an index serves the whole search (its phone digits too): one of
    two characters or more."""
    digits = searched_digits(search)
    return len(search) >= _PAIR and (digits is None or len(digits) >= _PAIR)


def _text(search: str) -> str:
    if _TRIGRAM.search(search):
        return _TEXT_LIKE
    return _TEXT_PAIRS if len(search) >= _PAIR else _TEXT_STRPOS


def _phones(digits: str) -> str:
    if len(digits) >= _TRIGRAM_DIGITS:
        return _PHONES_LIKE
    return _PHONES_PAIRS if len(digits) == _PAIR else _PHONES_STRPOS


def condition(search: str, first: int) -> tuple[str, list[object]]:
    """The SQL condition on rm_clients `c` that `search` (trimmed, non-empty, checked
    by query_parameters) adds, and its arguments, numbered from `$first`."""
    text = _text(search).format(n=first)
    digits = searched_digits(search)
    if digits is None:
        return f" AND {text}", [search]
    return f" AND ({text} OR {_phones(digits).format(n=first + 1)})", [search, digits]
