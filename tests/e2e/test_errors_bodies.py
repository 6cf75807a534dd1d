"""Refusals end to end, whole bodies: what is not JSON is a 400, what is not JSON at
all a 415, what is over 1 MiB a 413, on every POST route and writing nothing; an
empty body counts as `{}`."""

from __future__ import annotations

import io
from typing import Any

import asyncpg

from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import invalid
from tests.e2e.supervisor import event_count

JSON = {"Content-Type": "application/json"}
REQUIRED = "The amount field is required."
NOT_JSON = {"message": "The request body is not valid JSON"}
NOT_OBJECT = {"message": "The request body must be a JSON object"}
UNSUPPORTED = {
    "message": "The request body must be JSON (Content-Type: application/json)"
}
TOO_BIG = {"message": "The request body is too large (1 MiB at most)"}
MIB = 1024 * 1024


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
