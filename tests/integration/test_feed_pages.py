"""GET /api/v3/events page by page: exactly one business's events as the relay's
message bodies, pages that join without a gap or a repeat, and bad cursors refused."""

from __future__ import annotations

import asyncpg
from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from shared.bus import asyncapi
from tests.integration.event_feed import (
    business_messages,
    key_headers,
    post_ok,
    read_to_head,
)
from tests.integration.scenarios import id_of
from tests.support.environment import Environment


async def test_the_feed_pages_through_exactly_the_business_events(
    service: TestClient,
    business: dict[str, object],
    environment: Environment,
    pool: asyncpg.Pool,
) -> None:
    """Proves the feed serves one business's events, and only them, as the relay's
    message bodies, in pages of `limit` that join without a gap or a repeat: a second
    business writes meanwhile, and pages of 2 read to the head equal the business's
    stored events in (transaction, position) order."""
    headers = key_headers(business)
    other = await provision_business(environment.settings, "Other feed")
    for owner in (business, other):
        client_id = await post_ok(
            service, key_headers(owner), "/api/v3/clients", {"business_name": "Fed"}
        )
        await post_ok(
            service,
            key_headers(owner),
            f"/api/v3/clients/{client_id}/transactions",
            {"type": "debit", "amount": "3.00"},
        )

    events, last = await read_to_head(service, headers, limit=2)
    stored = await business_messages(pool, id_of(business))
    assert [event["type"] for event in stored] == [
        "category.created",
        "client.created",
        "transaction.posted",
    ]
    assert events == stored
    assert last == stored[-1]["position"]
    assert await read_to_head(service, headers, limit=1) == (events, last)
    other_events, _ = await read_to_head(service, key_headers(other), limit=1000)
    assert other_events == await business_messages(pool, id_of(other))
    assert {event["event_id"] for event in events}.isdisjoint(
        event["event_id"] for event in other_events
    )


async def test_the_feed_refuses_bad_cursors_and_needs_a_key(
    service: TestClient,
    business: dict[str, object],
    environment: Environment,
    pool: asyncpg.Pool,
) -> None:
    """Another business's position, a position no event has, a non-numeric or
    negative `after` and a zero `limit` answer 422 in the Laravel shape; no key is a
    401; the AsyncAPI document needs no key and is the generated one."""
    headers = key_headers(business)
    other = await provision_business(environment.settings, "Other cursor")
    foreign: int = await pool.fetchval(
        "SELECT position FROM events WHERE business_id = $1", id_of(other)
    )
    beyond = 1 + await pool.fetchval("SELECT max(position) FROM events")
    cursor_error = {
        "after": ["The after must be 0 or the position of one of your events."]
    }
    for query, errors in (
        ({"after": str(foreign)}, cursor_error),
        ({"after": str(beyond)}, cursor_error),
        ({"after": "abc"}, {"after": ["The after must be a whole number."]}),
        ({"after": "-1"}, {"after": ["The after must be a whole number."]}),
        ({"limit": "0"}, {"limit": ["The limit must be at least 1."]}),
    ):
        answer = await service.get("/api/v3/events", params=query, headers=headers)
        assert answer.status == 422, query
        assert await answer.json() == {
            "message": "The given data was invalid.",
            "errors": errors,
        }
    assert (await service.get("/api/v3/events")).status == 401
    document = await service.get("/api/v3/asyncapi.json")
    assert document.status == 200
    assert document.content_type == "application/json"
    assert await document.read() == asyncapi.rendered()
