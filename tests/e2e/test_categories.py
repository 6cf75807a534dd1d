"""The categories end to end: created and listed in the seed's shapes, with customer
counts; names unique ignoring case and spaces, and at most 255 characters."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import asyncpg

from shared.response_bodies import timestamp
from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import CATEGORY_FIELDS, TIMESTAMP_PATTERN, invalid
from tests.e2e.supervisor import (
    LedgerService,
    create_business,
    event_count,
    last_position,
)

TAKEN = {"message": "The category name has already been taken."}
TECHNOLOGY = {
    "name": "Technology",
    "description": "Products and services related to technology, including hardware "
    "and software.",
}


async def test_a_category_is_created_with_the_seeds_shape(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves POST /clients/category answers 201 with the category object of the
    seed's list and X-Ledger-Position its event's position in the store, by creating
    the seed's "Technology" sample."""
    reply = await api.post("/api/v3/clients/category", TECHNOLOGY)
    assert reply.status == 201
    written = await last_position(admin_pool, business["business_id"])
    assert int(reply.headers["X-Ledger-Position"]) == written
    body = reply.body
    assert list(body) == CATEGORY_FIELDS
    assert re.fullmatch(TIMESTAMP_PATTERN, body["created_at"])
    # The id and the time are the category.created event's, as the store holds it.
    stored = await admin_pool.fetchrow(
        "SELECT type, (payload->>'category_id')::bigint AS category_id, recorded_at"
        " FROM events WHERE position = $1",
        written,
    )
    assert stored["type"] == "category.created"
    assert body == {
        "id": stored["category_id"],
        "business_id": business["business_id"],
        **TECHNOLOGY,
        "created_at": timestamp(stored["recorded_at"]),
        "updated_at": timestamp(stored["recorded_at"]),
        "archived": False,
        "customer_count": 0,
    }
    listed = (await api.get("/api/v3/clients/categories")).body
    assert listed[-1] == body
    trimmed = await api.create_category("  Spaced out  ")
    assert (trimmed["name"], trimmed["description"]) == ("Spaced out", "")


async def test_a_duplicate_category_name_ignoring_case_and_spaces_is_a_409(
    ledger: LedgerService,
    http: aiohttp.ClientSession,
    api: Api,
    business: dict[str, Any],
    admin_pool: asyncpg.Pool,
) -> None:
    """Proves category names are unique per business ignoring case and surrounding
    spaces (the default "Uncategorised" too) and a refusal writes nothing, while
    another business may use the same name, by creating near-duplicates."""
    await api.create_category(TECHNOLOGY["name"])
    before = await event_count(admin_pool, business["business_id"])
    for name in (
        "Technology",
        "technology",
        "  TECHNOLOGY  ",
        "uncategorised",
        " Uncategorised",
    ):
        reply = await api.post("/api/v3/clients/category", {"name": name})
        assert (reply.status, reply.body) == (409, TAKEN), name
    assert await event_count(admin_pool, business["business_id"]) == before
    names = [
        category["name"]
        for category in (await api.get("/api/v3/clients/categories")).body
    ]
    assert names == ["Uncategorised", "Technology"]
    other = await create_business(ledger)
    theirs = await Api(http, other["api_key"]).create_category("technology")
    assert (theirs["name"], theirs["business_id"]) == (
        "technology",
        other["business_id"],
    )
    similar = await api.create_category("Technology 2")
    assert similar["name"] == "Technology 2"


async def test_a_category_needs_a_name_of_at_most_255_characters(api: Api) -> None:
    """Proves name is required and both fields are strings of at most 255 characters,
    by sending each kind of bad body to POST /clients/category."""
    required = {"name": ["The name field is required."]}
    for body, errors in (
        ({}, required),
        ({"description": "no name"}, required),
        ({"name": ""}, required),
        ({"name": "   "}, required),
        ({"name": None}, required),
        ({"name": 2021}, {"name": ["The name must be a string."]}),
        (
            {"name": "x" * 256},
            {"name": ["The name may not be greater than 255 characters."]},
        ),
        (
            {"name": "ok", "description": "d" * 256},
            {
                "description": [
                    "The description may not be greater than 255 characters."
                ]
            },
        ),
        (
            {"description": ["list"]},
            {
                "name": ["The name field is required."],
                "description": ["The description must be a string."],
            },
        ),
    ):
        reply = await api.post("/api/v3/clients/category", body)
        assert (reply.status, reply.body) == (422, invalid(errors)), body
    empty = await api.request("POST", "/api/v3/clients/category")
    assert (empty.status, empty.body) == (422, invalid(required))
    longest = await api.create_category("n" * 255, "d" * 255)
    assert (len(longest["name"]), len(longest["description"])) == (255, 255)


async def test_categories_are_listed_at_both_seed_paths_with_customer_counts(
    api: Api,
) -> None:
    """Proves /clients/categories and the seed's /clients/clients/categories give the
    same id-ordered list, and customer_count counts archived but not deleted clients,
    by spreading four clients over two categories."""
    school = await api.create_category("Class of 2021")
    jhs = await api.create_category("JHS 3 - 2022")
    for name in ("One", "Two", "Three"):
        await api.create_client(business_name=name, category_id=school["id"])
    archived = await api.create_client(business_name="Archived", category_id=jhs["id"])
    await api.post(f"/api/v3/clients/{archived['id']}/archive")
    deleted = await api.create_client(business_name="Deleted", category_id=jhs["id"])
    await api.delete(f"/api/v3/clients/{deleted['id']}")
    moved = await api.create_client(business_name="Moved", category_id=jhs["id"])
    await api.post(f"/api/v3/clients/{moved['id']}", {"category_id": school["id"]})
    short = await api.get("/api/v3/clients/categories")
    seed = await api.get("/api/v3/clients/clients/categories")
    assert short.status == seed.status == 200
    assert short.body == seed.body
    assert [category["id"] for category in short.body] == sorted(
        category["id"] for category in short.body
    )
    assert [(c["name"], c["customer_count"]) for c in short.body] == [
        ("Uncategorised", 0),
        ("Class of 2021", 4),
        ("JHS 3 - 2022", 1),
    ]
    assert short.body[1] == {**school, "customer_count": 4}
    assert all(list(category) == CATEGORY_FIELDS for category in short.body)
