"""Refusals end to end: each invalid input is a Laravel-style 4xx writing nothing."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import asyncpg

from shared.events import PROFILE_FIELDS
from tests.e2e.ledger_api import Api, today
from tests.e2e.seed_shapes import invalid
from tests.e2e.supervisor import event_count

JSON = {"Content-Type": "application/json"}
GREATER_THAN_ZERO = "The amount must be greater than zero."
TWO_DECIMALS = "The amount must have at most two decimals."
FINITE = "The amount must be a finite number."
NUMBER = "The amount must be a number."
TOO_LARGE = "The amount may not be greater than 999999999999.99."
REQUIRED = "The amount field is required."
# The amount exactly as it travels in the JSON body, and the one error it must give.
BAD_AMOUNTS = [
    ("-5", GREATER_THAN_ZERO),
    ("-0.01", GREATER_THAN_ZERO),
    ('"-12.50"', GREATER_THAN_ZERO),
    ("0", GREATER_THAN_ZERO),
    ("0.00", GREATER_THAN_ZERO),
    ('"0"', GREATER_THAN_ZERO),
    ("-0", GREATER_THAN_ZERO),
    ("1.005", TWO_DECIMALS),
    ('"1.005"', TWO_DECIMALS),
    ("0.001", TWO_DECIMALS),
    ("1e-400", TWO_DECIMALS),
    ('"NaN"', FINITE),
    ('"nan"', FINITE),
    ('"sNaN"', FINITE),
    ('"Infinity"', FINITE),
    ('"-Infinity"', FINITE),
    ('"inf"', FINITE),
    ('"abc"', NUMBER),
    ('"12abc"', NUMBER),
    ('""', NUMBER),
    ('"0x10"', NUMBER),
    ("true", NUMBER),
    ("[1]", NUMBER),
    ('{"value": 1}', NUMBER),
    ("1000000000000.00", TOO_LARGE),
    ('"1000000000000"', TOO_LARGE),
    ("999999999999.991", TWO_DECIMALS),
    ("1e400", TOO_LARGE),
    ("1" + "0" * 400, TOO_LARGE),
    ("null", REQUIRED),
]
NOT_JSON = {"message": "The request body is not valid JSON"}
NOT_OBJECT = {"message": "The request body must be a JSON object"}
UNSUPPORTED = {
    "message": "The request body must be JSON (Content-Type: application/json)"
}
TOO_BIG = {"message": "The request body is too large (1 MiB at most)"}
MIB = 1024 * 1024


def label(field: str) -> str:
    return field.replace("_", " ")


def post_routes(client_id: int) -> list[str]:
    """Every POST route but import, for a client that exists."""
    return [
        "/api/v3/clients",
        "/api/v3/clients/category",
        f"/api/v3/clients/{client_id}",
        f"/api/v3/clients/{client_id}/archive",
        f"/api/v3/clients/{client_id}/transactions",
        f"/api/v3/clients/{client_id}/deposits",
    ]


async def test_every_bad_amount_is_a_422_on_amount_and_writes_nothing(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves negative, zero, three-decimal, NaN, infinite, non-numeric and
    out-of-range amounts (as JSON numbers and strings) are each a 422 naming only
    `amount`, on transactions and deposits, and none appends an event, by posting
    each raw JSON body and counting the business's events."""
    client = await api.create_client(business_name="Target")
    before = await event_count(admin_pool, business["business_id"])
    for route in ("transactions", "deposits"):
        path = f"/api/v3/clients/{client['id']}/{route}"
        for amount, message in BAD_AMOUNTS:
            raw = f'{{"type": "debit", "amount": {amount}}}'
            reply = await api.request("POST", path, data=raw, headers=JSON)
            assert (reply.status, reply.body) == (
                422,
                invalid({"amount": [message]}),
            ), (route, amount)
        missing = await api.post(path, {"type": "debit"})
        assert missing.body == invalid({"amount": [REQUIRED]})
    assert await event_count(admin_pool, business["business_id"]) == before
    fetched = (await api.get(f"/api/v3/clients/{client['id']}")).body
    assert (fetched["balance"], fetched["deposit_amount"]) == ("0.00", 0)


async def test_type_must_be_debit_or_credit(api: Api) -> None:
    """Proves a posting's type is one of the two words, exactly, by posting others."""
    client = await api.create_client(business_name="Typed")
    for route in ("transactions", "deposits"):
        for body in (
            {"amount": "1"},
            {"type": "DEBIT", "amount": "1"},
            {"type": "refund", "amount": "1"},
            {"type": 1, "amount": "1"},
            {"type": None, "amount": "1"},
        ):
            reply = await api.post(f"/api/v3/clients/{client['id']}/{route}", body)
            assert (reply.status, reply.body) == (
                422,
                invalid({"type": ["The type must be debit or credit."]}),
            ), (route, body)


async def test_every_invalid_field_is_reported_at_once(api: Api) -> None:
    """Proves validation reports all invalid fields together (not just the first), by
    posting a transaction that is wrong in all five fields."""
    client = await api.create_client(business_name="Everything wrong")
    reply = await api.post(
        f"/api/v3/clients/{client['id']}/transactions",
        {
            "type": "gift",
            "amount": "-1",
            "date": "2024-02-30",
            "description": 5,
            "reference": "r" * 256,
        },
    )
    assert reply.status == 422
    assert reply.body == invalid(
        {
            "type": ["The type must be debit or credit."],
            "amount": [GREATER_THAN_ZERO],
            "date": ["The date is not a valid date."],
            "description": ["The description must be a string."],
            "reference": ["The reference may not be greater than 255 characters."],
        }
    )
    created = await api.post(
        "/api/v3/clients",
        {"business_name": "", "business_email": "x", "first_name": ["a"]},
    )
    assert created.body == invalid(
        {
            "first_name": ["The first name must be a string."],
            "business_name": ["The business name field is required."],
            "business_email": ["The business email must be a valid email address."],
        }
    )


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


async def test_a_body_that_is_not_json_is_a_400_on_every_post_route(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves malformed JSON (broken syntax, invalid UTF-8, nesting beyond any limit)
    is a 400 on every POST route and writes nothing, by posting each as JSON."""
    client = await api.create_client(business_name="Parser")
    before = await event_count(admin_pool, business["business_id"])
    bodies: list[bytes] = [
        b"{not json",
        b'{"business_name": "x",}',
        b'{"type": "debit", "amount": NaN}',
        b'{"business_name": "\xff\xfe"}',
        b'{"business_name": "\\ud800"}',
        b"[" * 100_000 + b"]" * 100_000,
        b"{'business_name': 'x'}",
    ]
    for path in post_routes(client["id"]):
        for body in bodies:
            reply = await api.request("POST", path, data=body, headers=JSON)
            assert (reply.status, reply.body) == (400, NOT_JSON), (path, body[:30])
    assert await event_count(admin_pool, business["business_id"]) == before


async def test_a_json_body_that_is_not_an_object_is_a_400(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves a JSON array, string, number or null body is a 400 on every POST route,
    by posting each, including an array wrapping a valid object."""
    client = await api.create_client(business_name="Shapes")
    before = await event_count(admin_pool, business["business_id"])
    for path in post_routes(client["id"]):
        for body in (
            b'[{"business_name": "x"}]',
            b"[]",
            b'"x"',
            b"42",
            b"null",
            b"true",
        ):
            reply = await api.request("POST", path, data=body, headers=JSON)
            assert (reply.status, reply.body) == (400, NOT_OBJECT), (path, body)
    assert await event_count(admin_pool, business["business_id"]) == before


async def test_a_non_empty_body_that_is_not_json_is_a_415(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves a non-empty POST body sent as anything but JSON is a 415, even when its
    bytes happen to be JSON, by posting form, text and octet-stream bodies."""
    client = await api.create_client(business_name="Typed body")
    before = await event_count(admin_pool, business["business_id"])
    for path in post_routes(client["id"]):
        for content_type, body in (
            ("application/x-www-form-urlencoded", "business_name=x"),
            ("text/plain", '{"business_name": "x"}'),
            ("application/octet-stream", '{"business_name": "x"}'),
            ("multipart/form-data; boundary=x", "--x--"),
        ):
            reply = await api.request(
                "POST", path, data=body, headers={"Content-Type": content_type}
            )
            assert (reply.status, reply.body) == (415, UNSUPPORTED), (
                path,
                content_type,
            )
    assert await event_count(admin_pool, business["business_id"]) == before
    charset = await api.request(
        "POST",
        "/api/v3/clients",
        data='{"business_name": "With charset"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert (charset.status, charset.body["business_name"]) == (201, "With charset")


async def test_an_empty_body_counts_as_an_empty_object(api: Api) -> None:
    """Proves an empty POST body is `{}` whatever its Content-Type, by posting nothing
    to create (business_name required), archive (toggles) and a posting (type and
    amount required)."""
    required = invalid({"business_name": ["The business name field is required."]})
    for headers in ({}, {"Content-Type": "text/plain"}, JSON):
        reply = await api.request("POST", "/api/v3/clients", data=b"", headers=headers)
        assert (reply.status, reply.body) == (422, required), headers
    client = await api.create_client(business_name="Toggle")
    toggled = await api.request(
        "POST",
        f"/api/v3/clients/{client['id']}/archive",
        data=b"",
        headers={"Content-Type": "text/plain"},
    )
    assert (toggled.status, toggled.body["archived"]) == (200, True)
    posting = await api.request("POST", f"/api/v3/clients/{client['id']}/transactions")
    assert posting.body == invalid(
        {"type": ["The type must be debit or credit."], "amount": [REQUIRED]}
    )


async def test_a_body_over_one_mebibyte_is_a_413_and_one_mebibyte_is_not(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves the 1 MiB bound on request bodies, by posting a valid client padded
    with an unknown field to exactly 1 MiB (accepted) and one byte more (413)."""

    def padded(size: int) -> bytes:
        head, tail = b'{"business_name": "Padded", "padding": "', b'"}'
        return head + b"p" * (size - len(head) - len(tail)) + tail

    before = await event_count(admin_pool, business["business_id"])
    refused = await api.request(
        "POST", "/api/v3/clients", data=io.BytesIO(padded(MIB + 1)), headers=JSON
    )
    assert (refused.status, refused.body) == (413, TOO_BIG)
    assert await event_count(admin_pool, business["business_id"]) == before
    accepted = await api.request(
        "POST", "/api/v3/clients", data=io.BytesIO(padded(MIB)), headers=JSON
    )
    assert (accepted.status, accepted.body["business_name"]) == (201, "Padded")


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


async def test_no_odd_input_makes_the_service_answer_500(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves odd inputs get a deliberate 4xx with a JSON message and the service stays
    healthy, by walking a table of odd requests that each once risked a 500 and
    asserting each one's exact status."""
    client = await api.create_client(business_name="Odd")
    cid = client["id"]
    odd: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", "/api/v3/clients?category_id=%C2%B2", {}, 422),
        ("GET", "/api/v3/clients?category_id=%00", {}, 422),
        ("GET", "/api/v3/clients?category_id=" + "9" * 40, {}, 422),
        ("GET", "/api/v3/clients/summary?category_id=%C2%B2", {}, 422),
        ("GET", "/api/v3/clients?page=%C2%B2&per_page=2", {}, 422),
        ("GET", "/api/v3/clients?page=999999999999999999&per_page=1000", {}, 422),
        ("GET", "/api/v3/clients?archived=%00", {}, 422),
        ("GET", f"/api/v3/clients/{cid}/transactions?from=" + "2" * 5000, {}, 422),
        ("GET", f"/api/v3/clients/{cid}/transactions?from=%EF%BC%92024-01-01", {}, 422),
        ("GET", "/api/v3/clients/%C2%B2", {}, 404),
        ("GET", "/api/v3/clients/999999999999999999", {}, 404),
        ("GET", "/api/v3/clients/0", {}, 404),
        ("GET", "/api/v3/nothing/here", {}, 404),
        ("PUT", f"/api/v3/clients/{cid}", {}, 405),
        ("PATCH", "/api/v3/clients", {}, 405),
        ("GET", "/api/v3/clients", {"headers": {"X-Ledger-Min-Position": "²"}}, 422),
        (
            "GET",
            "/api/v3/clients",
            {"headers": {"X-Ledger-Min-Position": "9" * 30}},
            422,
        ),
        ("GET", "/api/v3/clients", {"headers": {"X-Ledger-Min-Position": "-1"}}, 422),
        (
            "POST",
            f"/api/v3/clients/{cid}",
            {"json_body": {}, "headers": {"If-Match": "²"}},
            412,
        ),
        (
            "POST",
            f"/api/v3/clients/{cid}",
            {"json_body": {}, "headers": {"If-Match": '"9' * 40}},
            412,
        ),
        (
            "POST",
            "/api/v3/clients",
            {"json_body": {"business_name": "x", "category_id": "²"}},
            422,
        ),
        (
            "POST",
            "/api/v3/clients",
            {"json_body": {"business_name": "x", "category_id": 10**30}},
            422,
        ),
        (
            "POST",
            "/api/v3/clients",
            {"json_body": {"business_name": "x", "category_id": {"id": 1}}},
            422,
        ),
        (
            "POST",
            "/api/v3/clients",
            {"json_body": {"business_name": {"nested": ["x"]}}},
            422,
        ),
        (
            "POST",
            "/api/v3/clients",
            {"json_body": {"business_name": "x"}, "headers": {"Idempotency-Key": ""}},
            422,
        ),
        (
            "POST",
            "/api/v3/clients",
            {
                "json_body": {"business_name": "x"},
                "headers": {"Idempotency-Key": "k" * 256},
            },
            422,
        ),
        (
            "POST",
            f"/api/v3/clients/{cid}/transactions",
            {"json_body": {"type": ["debit"], "amount": {"x": 1}, "date": [2024]}},
            422,
        ),
        (
            "POST",
            f"/api/v3/clients/{cid}/transactions",
            {"json_body": {"type": "debit", "amount": "1E+5000000"}},
            422,
        ),
        (
            "POST",
            f"/api/v3/clients/{cid}/deposits",
            {"json_body": {"type": "credit", "amount": "9" * 400}},
            422,
        ),
        (
            "POST",
            f"/api/v3/clients/{cid}/archive",
            {"json_body": {"archived": [True]}},
            422,
        ),
        ("DELETE", "/api/v3/clients/abc", {}, 404),
    ]
    before = await event_count(admin_pool, business["business_id"])
    for method, path, kwargs, status in odd:
        reply = await api.request(method, path, **kwargs)
        assert reply.status == status, (method, path, kwargs, reply.body)
        assert isinstance(reply.body, dict) and isinstance(reply.body["message"], str)
    assert await event_count(admin_pool, business["business_id"]) == before
    assert (await api.get("/healthz")).status == 200
    assert (await api.get(f"/api/v3/clients/{cid}")).body == client


async def test_a_posting_dated_today_uses_the_utc_calendar(api: Api) -> None:
    """Proves "today" is the UTC date (the default for an undated posting), by
    comparing the answer with the UTC date around the request."""
    client = await api.create_client(business_name="Clock")
    start = today()
    posted = await api.post_transaction(client["id"], "debit", "1")
    assert posted["date"] in {start.isoformat(), today().isoformat()}
    assert dt.date.fromisoformat(posted["date"]) >= start
