"""Clients end to end, creation: the seed's shapes, its sample request, and how a
category id may be given or refused."""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from shared.response_bodies import timestamp
from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import (
    CLIENT_FIELDS,
    SEED_REQUEST,
    TIMESTAMP_PATTERN,
    invalid,
)
from tests.e2e.supervisor import event_count, last_position


async def uncategorised(api: Api) -> dict[str, Any]:
    [category] = [
        category
        for category in (await api.get("/api/v3/clients/categories")).body
        if category["name"] == "Uncategorised"
    ]
    return category


async def test_a_client_created_with_only_business_name_has_the_seeds_shape(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves only business_name is required and the 201 body is the seed's create
    response field for field, in order, with X-Ledger-Position its event's position in
    the store, by creating "Echis Viper" with nothing else."""
    reply = await api.post("/api/v3/clients", {"business_name": "Echis Viper"})
    assert reply.status == 201
    body = reply.body
    assert list(body) == CLIENT_FIELDS
    written = await last_position(admin_pool, business["business_id"])
    assert int(reply.headers["X-Ledger-Position"]) == written
    assert re.fullmatch(TIMESTAMP_PATTERN, body["created_at"])
    # The ids and the time are the client.created event's, as the store holds it.
    stored = await admin_pool.fetchrow(
        "SELECT type, (payload->>'client_id')::bigint AS client_id,"
        " (payload->>'account_id')::bigint AS account_id, recorded_at"
        " FROM events WHERE position = $1",
        written,
    )
    assert stored["type"] == "client.created"
    assert stored["account_id"] != stored["client_id"]
    default = await uncategorised(api)
    assert body == {
        "id": stored["client_id"],
        "owner_id": business["owner_id"],
        "business_id": business["business_id"],
        "first_name": "",
        "last_name": "",
        "phone_number": "",
        "business_name": "Echis Viper",
        "business_address": "",
        "business_phone": "",
        "business_location": "",
        "business_email": "",
        "created_at": timestamp(stored["recorded_at"]),
        "updated_at": timestamp(stored["recorded_at"]),
        "account_id": stored["account_id"],
        "category": "Uncategorised",
        "category_id": default["id"],
        "deposit_amount": 0,
        "deposit_account_id": None,
        "archived": False,
        "transactions": [],
        "unformated_balance": 0,
        "balance": "0.00",
        "total_debit": "0.00",
        "total_credit": "0.00",
    }
    assert b'"deposit_amount":0,' in reply.raw
    assert b'"unformated_balance":0,' in reply.raw
    fetched = await api.get(f"/api/v3/clients/{body['id']}")
    assert (fetched.status, fetched.body) == (200, body)
    assert fetched.headers["ETag"] == '"1"'


async def test_the_seeds_sample_create_request_works_with_a_real_category_id(
    api: Api, business: dict[str, Any]
) -> None:
    """Proves the seed's sample request creates the client it describes once its
    category_id names a real category, by sending it with "Class of 2021"'s id."""
    category = await api.create_category("Class of 2021")
    reply = await api.post(
        "/api/v3/clients", {**SEED_REQUEST, "category_id": category["id"]}
    )
    assert reply.status == 201
    body = reply.body
    assert list(body) == CLIENT_FIELDS
    assert {name: body[name] for name in SEED_REQUEST} == SEED_REQUEST
    assert (body["category"], body["category_id"]) == ("Class of 2021", category["id"])
    assert (body["owner_id"], body["business_id"]) == (
        business["owner_id"],
        business["business_id"],
    )
    assert body["business_location"] == ""


async def test_the_seeds_category_id_cat_456_is_refused_and_writes_nothing(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves the seed's sample `category_id: "CAT-456"` (and any id of no category)
    is a 422 on category_id that appends no event, by counting the business's events."""
    before = await event_count(admin_pool, business["business_id"])
    for category_id in ("CAT-456", 999_999_999, "999999999", -1, 0, 1.5, True, [1]):
        reply = await api.post(
            "/api/v3/clients", {**SEED_REQUEST, "category_id": category_id}
        )
        assert reply.status == 422, category_id
        assert reply.body == invalid(
            {"category_id": ["The selected category id is invalid."]}
        )
    assert await event_count(admin_pool, business["business_id"]) == before
    assert (await api.get("/api/v3/clients")).body == []


async def test_category_id_may_be_an_integer_or_a_numeric_string(api: Api) -> None:
    """Proves both spellings of a category id pick the category, and null or "" means
    "Uncategorised", by creating four clients and reading their category back."""
    category = await api.create_category("JHS 3 - 2022")
    default = await uncategorised(api)
    for given, expected in (
        (category["id"], category),
        (str(category["id"]), category),
        (f" {category['id']} ", category),
        (None, default),
        ("", default),
    ):
        client = await api.create_client(business_name="Pupil", category_id=given)
        assert (client["category_id"], client["category"]) == (
            expected["id"],
            expected["name"],
        ), given
