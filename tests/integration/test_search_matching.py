"""`GET /api/v3/clients?search=` through the real HTTP API and PostgreSQL: what a
search matches (case, accents, substrings, the six fields, phone numbers written any
way, LIKE wildcards as plain characters)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from services.query_api.client_search import searched_digits
from tests.integration.search_calls import Searcher, Service


@pytest.fixture
def searcher(service: Service, business: dict[str, Any]) -> Searcher:
    return Searcher(service, business)


async def test_a_search_ignores_case_and_accents_and_finds_substrings(
    searcher: Searcher,
) -> None:
    """Proves folding on both sides (stored text and query), by finding José Ñúñez
    and Kwame Mensah with accent-less, upper-case, accented and partial queries."""
    kwame = await searcher.client(
        first_name="Kwame", last_name="Mensah", business_name="Kwame Hardware"
    )
    jose = await searcher.client(
        first_name="José", last_name="Ñúñez", business_name="Café Olé"
    )
    await searcher.client(first_name="Ama", last_name="Owusu")
    cases = {
        "jose": [jose],
        "JOSE": [jose],
        "José": [jose],
        "JOSÉ": [jose],
        "nunez": [jose],
        "ÑÚÑEZ": [jose],
        "cafe ole": [jose],
        "MENSAH": [kwame],
        "ensa": [kwame],
        "kwame mensah": [kwame],
        "Kwame": [kwame],
        "hardware": [kwame],
        "e": [kwame, jose],
        "mensah kwame": [],
        "zzz": [],
    }
    found = {query: await searcher.found(query) for query in cases}
    assert found == cases


async def test_each_of_the_six_fields_is_searched_and_no_other(
    searcher: Searcher,
) -> None:
    """Proves the fields searched are first, last and business name, phone number,
    business phone and business e-mail, by giving one client a word of its own in
    each of its eight fields and searching for each word."""
    target = await searcher.client(
        first_name="Yaw",
        last_name="Boateng",
        business_name="Sunrise Bakery",
        phone_number="027 555 0101",
        business_phone="0302 999 888",
        business_email="orders@dawn.example",
        business_address="Ring Road Central",
        business_location="Osu Castle",
    )
    await searcher.client(first_name="Other", phone_number="020 000 0000")
    cases = {
        "yaw": [target],
        "boateng": [target],
        "bakery": [target],
        "0275550101": [target],
        "0302999888": [target],
        "orders@dawn": [target],
        "ring road": [],
        "castle": [],
    }
    assert {query: await searcher.found(query) for query in cases} == cases


async def test_a_phone_number_is_found_however_it_is_written(
    searcher: Searcher,
) -> None:
    """Proves phone numbers match without spaces and punctuation and with or without
    +233, 233, 00233 or the leading 0, on either side, substrings too, by searching
    a number stored as "024 412 3456" and one stored as "+233 (0)20 111-2222"."""
    spaced = await searcher.client(first_name="Esi", phone_number="024 412 3456")
    prefixed = await searcher.client(
        first_name="Kofi", business_phone="+233 (0)20 111-2222"
    )
    abena = await searcher.client(first_name="Abena", phone_number="055 123 4567")
    for query in (
        "0244123456",
        "244123456",
        "+233244123456",
        "+233 24 412 3456",
        "233244123456",
        "00233244123456",
        "024-412-3456",
        "(024) 412.3456",
        "412 345",
        "0244",
    ):
        assert await searcher.found(query) == [spaced], query
    for query in ("0201112222", "+233201112222", "20 111 2222", "111-22"):
        assert await searcher.found(query) == [prefixed], query
    assert await searcher.found("0244123457") == []
    # The country code, or the trunk 0, alone is in every number's stored forms.
    assert await searcher.found("+233") == [spaced, prefixed, abena]
    assert await searcher.found("0") == [spaced, prefixed, abena]


async def test_like_wildcards_in_a_search_are_plain_characters(
    searcher: Searcher,
) -> None:
    """Proves %, _ and \\ (and the full-width ％ ＿ that unaccent folds into them)
    match only themselves, with a trigram to look up (LIKE) and without (strpos), by
    searching for them among names that would match them as wildcards."""
    percent = await searcher.client(first_name="50% Off Stores")
    await searcher.client(first_name="500 Off Stores")
    underscore = await searcher.client(first_name="A_B Traders")
    await searcher.client(first_name="AXB Traders")
    backslash = await searcher.client(first_name="Back\\Slash Ltd")
    await searcher.client(first_name="Back Slash Ltd")
    cases = {
        "50% off": [percent],
        "50%": [percent],
        "%": [percent],
        "５０％ off": [percent],
        "a_b traders": [underscore],
        "a_b": [underscore],
        "_": [underscore],
        "a＿b": [underscore],
        "back\\slash": [backslash],
        "k\\s": [backslash],
        "\\": [backslash],
        "%_\\": [],
    }
    assert {query: await searcher.found(query) for query in cases} == cases


async def test_every_written_form_s_digits_are_in_every_stored_form_s_forms(
    admin: asyncpg.Connection,
) -> None:
    """Proves the query's digits (searched_digits, Python) are a substring of the
    stored forms (public.ledger_phone_forms, PostgreSQL) whichever way each side
    wrote the same number, and the forms are exactly the two dialled ways."""
    written = [
        "024 412 3456",
        "+233 24 412 3456",
        "+233 (0)24 412-3456",
        "00233244123456",
        "0244123456",
        "233244123456",
    ]
    # A Glo number: its national part begins 233.
    glo = ["0233 456 789", "+233 23 345 6789", "00233 (0)23 345 6789"]
    rows = await admin.fetch(
        "SELECT public.ledger_phone_forms(form) AS forms"
        " FROM unnest($1::text[]) WITH ORDINALITY AS f(form, n) ORDER BY n",
        [*written, *glo, "", "+-", "030.277.0000", "024 2330 455"],
    )
    forms = [row["forms"] for row in rows]
    assert forms == [
        *["0244123456 233244123456"] * len(written),
        *["0233456789 233233456789"] * len(glo),
        "",
        "",
        "0302770000 233302770000",
        "0242330455 233242330455",
    ]
    for form in written:
        digits = searched_digits(form)
        assert digits is not None and digits in forms[0], form
    for form in glo:
        digits = searched_digits(form)
        assert digits is not None and digits in forms[len(written)], form
    assert searched_digits("2330 455") in forms[-1]
