"""Refusals end to end, field by field: dates, e-mail addresses, strings over 255
characters and null characters are Laravel-style 422s writing nothing; an undated
posting takes the UTC calendar's today."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from shared.events import PROFILE_FIELDS
from tests.e2e.ledger_api import Api, today
from tests.e2e.seed_shapes import invalid
from tests.e2e.supervisor import event_count


def label(field: str) -> str:
    return field.replace("_", " ")


async def test_a_bad_posting_date_is_a_422(api: Api) -> None:
    """Proves a posting's date must be a real calendar date written YYYY-MM-DD, by
    posting impossible and differently written dates."""
    client = await api.create_client(business_name="Calendar")
    form = "The date must be a date in the format YYYY-MM-DD."
    for route in ("transactions", "deposits"):
        for date, message in (
            ("2024-02-30", "The date is not a valid date."),
            ("2023-02-29", "The date is not a valid date."),
            ("2024-00-10", "The date is not a valid date."),
            ("2024-1-5", form),
            ("05/01/2024", form),
            ("2024-01-01T00:00:00Z", form),
            ("yesterday", form),
            (20240101, form),
            ("２０２４-０１-０１", form),
        ):
            reply = await api.post(
                f"/api/v3/clients/{client['id']}/{route}",
                {"type": "debit", "amount": "1", "date": date},
            )
            assert (reply.status, reply.body) == (
                422,
                invalid({"date": [message]}),
            ), (route, date)
    leap = await api.post_transaction(client["id"], "debit", "1", date="2024-02-29")
    assert leap["date"] == "2024-02-29"


async def test_a_bad_email_is_a_422_and_an_empty_one_is_allowed(api: Api) -> None:
    """Proves business_email must look like an address when given, on create and
    update, by sending malformed ones, then "" (the seed's own empty value)."""
    message = invalid(
        {"business_email": ["The business email must be a valid email address."]}
    )
    client = await api.create_client(business_name="Mailer")
    for email in ("not-an-email", "a@b", "a b@c.com", "@example.com", "x@", "x@@y.com"):
        created = await api.post(
            "/api/v3/clients", {"business_name": "x", "business_email": email}
        )
        assert (created.status, created.body) == (422, message), email
        updated = await api.post(
            f"/api/v3/clients/{client['id']}", {"business_email": email}
        )
        assert (updated.status, updated.body) == (422, message), email
    good = await api.create_client(
        business_name="x", business_email="ykatulie@gmail.com"
    )
    assert good["business_email"] == "ykatulie@gmail.com"
    empty = await api.create_client(business_name="x", business_email="")
    assert empty["business_email"] == ""


async def test_strings_over_255_characters_are_422s_and_255_are_fine(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves every client string field and a posting's description and reference
    take at most 255 characters (characters, not bytes), by sending 256 of each at
    once (every field reported, nothing written), then 255 multi-byte ones."""
    before = await event_count(admin_pool, business["business_id"])
    too_long = {field: "x" * 256 for field in PROFILE_FIELDS}
    reply = await api.post("/api/v3/clients", too_long)
    assert reply.status == 422
    assert reply.body == invalid(
        {
            field: [f"The {label(field)} may not be greater than 255 characters."]
            for field in PROFILE_FIELDS
        }
    )
    assert await event_count(admin_pool, business["business_id"]) == before
    longest = {
        field: "é" * 255 for field in PROFILE_FIELDS if field != "business_email"
    }
    longest["business_email"] = "a" * 243 + "@example.com"
    client = await api.create_client(**longest)
    assert {field: client[field] for field in longest} == longest
    for route, fields in (
        ("transactions", ("description", "reference")),
        ("deposits", ("description",)),
    ):
        path = f"/api/v3/clients/{client['id']}/{route}"
        for field in fields:
            refused = await api.post(
                path, {"type": "debit", "amount": "1", field: "y" * 256}
            )
            assert refused.body == invalid(
                {field: [f"The {field} may not be greater than 255 characters."]}
            )
            accepted = await api.post(
                path, {"type": "debit", "amount": "1", field: "ü" * 255}
            )
            assert (accepted.status, accepted.body[field]) == (201, "ü" * 255)


async def test_a_null_character_is_a_422_not_a_500(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves U+0000 (which PostgreSQL cannot store) is refused per field instead of
    failing the append, by sending it in a client, a category and a posting."""
    client = await api.create_client(business_name="Nul")
    before = await event_count(admin_pool, business["business_id"])
    for path, body, field in (
        ("/api/v3/clients", {"business_name": "a\u0000b"}, "business_name"),
        (f"/api/v3/clients/{client['id']}", {"last_name": "\u0000"}, "last_name"),
        ("/api/v3/clients/category", {"name": "\u0000"}, "name"),
        (
            f"/api/v3/clients/{client['id']}/transactions",
            {"type": "debit", "amount": 1, "reference": "x\u0000"},
            "reference",
        ),
    ):
        reply = await api.post(path, body)
        assert (reply.status, reply.body) == (
            422,
            invalid({field: [f"The {label(field)} may not contain null characters."]}),
        ), path
    assert await event_count(admin_pool, business["business_id"]) == before


async def test_a_posting_dated_today_uses_the_utc_calendar(api: Api) -> None:
    """Proves "today" is the UTC date (the default for an undated posting), by
    comparing the answer with the UTC date around the request."""
    client = await api.create_client(business_name="Clock")
    start = today()
    posted = await api.post_transaction(client["id"], "debit", "1")
    assert posted["date"] in {start.isoformat(), today().isoformat()}
    assert dt.date.fromisoformat(posted["date"]) >= start
