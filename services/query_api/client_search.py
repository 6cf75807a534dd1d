"""The client list's `search`: what it matches and the SQL condition it adds.

The read model stores what a search compares (projections/balances/0003_search.sql):
`search_text`, the names and the e-mail address folded by `public.ledger_fold`
(accents off, lower case), and `search_phones`, both phone numbers normalised by
`public.ledger_phone_digits` (digits only, a leading 233 and trunk zeros dropped). A
search is a substring of either, found through the GIN trigram index on both.
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
# Three letters or digits in a row: pg_trgm has a trigram of the text to look up.
_TRIGRAM = re.compile(r"[^\W_]{3}")
_TRIGRAM_DIGITS = 3
# What a phone number may be written with besides digits: spaces and punctuation.
_PHONE_LIKE = re.compile(r"[0-9\s+\-().\/]*[0-9][0-9\s+\-().\/]*")
_NOT_DIGITS = re.compile(r"[^0-9]+")
# public.ledger_phone_digits' prefix: trunk zeros, the country code, trunk zeros.
_PREFIX = re.compile(r"^0*(233)?0*")


def phone_digits(text: str) -> str:
    """`text` normalised as public.ledger_phone_digits normalises a stored number."""
    return _PREFIX.sub("", _NOT_DIGITS.sub("", text), count=1)


def searched_digits(text: str) -> str | None:
    """The digits to look for in the normalised phone numbers, or None when `text`
    is not written as a phone number is. Digits that are nothing but a prefix ("0",
    "233") are looked for as they are, not as "" (which every number contains)."""
    if not _PHONE_LIKE.fullmatch(text):
        return None
    return phone_digits(text) or _NOT_DIGITS.sub("", text)


def indexed(search: str) -> bool:
    """Whether the trigram index serves the whole search (its phone digits too)."""
    digits = searched_digits(search)
    return _TRIGRAM.search(search) is not None and (
        digits is None or len(digits) >= _TRIGRAM_DIGITS
    )


def condition(search: str, first: int) -> tuple[str, list[object]]:
    """The SQL condition on rm_clients `c` that `search` (trimmed, non-empty, checked
    by query_parameters) adds, and its arguments, numbered from `$first`."""
    text = _TEXT_LIKE if _TRIGRAM.search(search) else _TEXT_STRPOS
    digits = searched_digits(search)
    if digits is None:
        return f" AND {text.format(n=first)}", [search]
    phones = _PHONES_LIKE if len(digits) >= _TRIGRAM_DIGITS else _PHONES_STRPOS
    either = f"{text.format(n=first)} OR {phones.format(n=first + 1)}"
    return f" AND ({either})", [search, digits]
