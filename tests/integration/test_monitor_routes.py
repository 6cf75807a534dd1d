"""Balance monitors' routes over the real HTTP API: what GET lists, DELETE, the
refusals and the per-business bound; each answer exact, nothing written on a 422."""

from __future__ import annotations

import asyncio

import asyncpg
import msgspec

from shared.config import Settings
from tests.integration.monitor_calls import (
    balance_monitor,
    monitored_to,
    new_monitor,
    post,
    triggers,
)
from tests.integration.reversal_calls import (
    Headers,
    Service,
    business_headers,
    get_json,
    new_client,
    post_json,
)
from tests.support.environment import Environment
from tests.support.service import http_client, monitoring

BAD_BODIES: list[tuple[dict[str, object], dict[str, list[str]]]] = [
    (
        {},
        {
            "scope": ["The scope field is required."],
            "figure": ["The figure field is required."],
            "condition": ["The condition field is required."],
            "amount": ["The amount field is required."],
        },
    ),
    (
        {"scope": "all", "figure": "balance", "condition": ">", "amount": 1},
        {
            "scope": ["The scope must be one of: client, category, business."],
            "condition": ["The condition must be one of: >=, <=."],
        },
    ),
    (
        {"scope": "client", "figure": "balance", "condition": ">=", "amount": 1},
        {"client_id": ["The client id field is required."]},
    ),
    (
        {
            "scope": "business",
            "category_id": 1,
            "figure": "deposit",
            "condition": "<=",
            "amount": "1.005",
        },
        {
            "category_id": ["The category id is only for scope category."],
            "amount": ["The amount must have at most two decimals."],
        },
    ),
    (
        {
            "scope": "client",
            "client_id": 2**40,
            "figure": "balance",
            "condition": ">=",
            "amount": 1,
        },
        {"client_id": ["The selected client id is invalid."]},
    ),
    (
        {
            "scope": "category",
            "category_id": 2**40,
            "figure": "balance",
            "condition": ">=",
            "amount": 1,
        },
        {"category_id": ["The selected category id is invalid."]},
    ),
]


async def test_a_deleted_monitor_fires_no_more_and_leaves_the_list(
    service: Service, pool: asyncpg.Pool, environment: Environment, business: dict
) -> None:
    """GET lists the monitor with its exact fields; after DELETE the list is empty,
    a second DELETE is 404, and a crossing after the deletion records nothing."""
    headers = business_headers(business)
    client = await new_client(service, headers)
    monitor = await balance_monitor(service, headers, client, "<=", "-10.50")
    listed = await get_json(service, "/api/v3/monitors", headers)
    assert isinstance(listed, dict)
    [shown] = listed["monitors"]
    assert {key: value for key, value in shown.items() if key != "created_at"} == {
        "id": monitor,
        "scope": "client",
        "client_id": client,
        "category_id": None,
        "figure": "balance",
        "condition": "<=",
        "amount": -10.5,
    }
    assert await get_json(service, f"/api/v3/monitors/{monitor}", headers) == shown
    response = await service.delete(f"/api/v3/monitors/{monitor}", headers=headers)
    assert response.status == 200
    assert await response.json() == {"message": "Monitor deleted", "id": monitor}
    again = await service.delete(f"/api/v3/monitors/{monitor}", headers=headers)
    assert again.status == 404
    assert await again.json() == {"message": f"Monitor {monitor} not found"}
    assert await get_json(service, "/api/v3/monitors", headers) == {"monitors": []}
    async with monitoring(environment.settings):
        credit = await post(service, headers, client, "transactions", "credit", "11")
        await monitored_to(pool, credit)
    assert await triggers(pool, monitor) == []


async def test_bad_monitors_are_refused_with_every_reason_and_write_nothing(
    service: Service, business: dict, pool: asyncpg.Pool
) -> None:
    """Each malformed body is a 422 naming its fields; a client or category of
    another business is invalid; nothing reaches the store."""
    headers: Headers = business_headers(business)
    before = await pool.fetchval(
        "SELECT count(*) FROM events WHERE type LIKE 'monitor.%'"
    )
    for body, errors in BAD_BODIES:
        status, answer = await post_json(service, "/api/v3/monitors", body, headers)
        assert (status, answer.get("errors")) == (422, errors), body
    after = await pool.fetchval(
        "SELECT count(*) FROM events WHERE type LIKE 'monitor.%'"
    )
    assert after == before


async def test_a_business_may_have_only_so_many_monitors_even_asked_at_once(
    environment: Environment, business: dict
) -> None:
    """With LEDGER_MONITORS_PER_BUSINESS_MAX=3, six creations sent at once give
    exactly three 201s and three 422s naming the bound (the business's creations take
    turns); deleting one makes room again."""
    settings: Settings = msgspec.structs.replace(
        environment.settings, monitors_per_business_max=3
    )
    headers = business_headers(business)
    body = {"scope": "business", "figure": "balance", "condition": ">=", "amount": 1}
    async with http_client(settings) as service:
        answers = await asyncio.gather(
            *(post_json(service, "/api/v3/monitors", body, headers) for _ in range(6))
        )
        statuses = sorted(status for status, _ in answers)
        assert statuses == [201, 201, 201, 422, 422, 422]
        refusals = [answer["errors"] for status, answer in answers if status == 422]
        assert (
            refusals == [{"monitors": ["A business may have at most 3 monitors."]}] * 3
        )
        kept = next(answer["id"] for status, answer in answers if status == 201)
        response = await service.delete(f"/api/v3/monitors/{kept}", headers=headers)
        assert response.status == 200
        await new_monitor(service, headers, **body)
