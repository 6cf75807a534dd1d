"""Refusals end to end, odd input: requests that each once risked a 500 get a
deliberate 4xx with a JSON message, write nothing and leave the service healthy.

Each test walks a table of odd requests (method, path, the request's keyword
arguments, the exact status expected) against one fresh client."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.e2e.ledger_api import Api
from tests.e2e.supervisor import event_count

Odd = tuple[str, str, dict[str, Any], int]


async def _assert_each_refused_and_nothing_changed(
    api: Api,
    business: dict[str, Any],
    admin_pool: asyncpg.Pool,
    client: dict[str, Any],
    odd: list[Odd],
) -> None:
    """Each request answers its exact status with a JSON message; afterwards the
    business has no new event, /healthz answers 200 and the client is unchanged."""
    before = await event_count(admin_pool, business["business_id"])
    for method, path, kwargs, status in odd:
        reply = await api.request(method, path, **kwargs)
        assert reply.status == status, (method, path, kwargs, reply.body)
        assert isinstance(reply.body, dict) and isinstance(reply.body["message"], str)
    assert await event_count(admin_pool, business["business_id"]) == before
    assert (await api.get("/healthz")).status == 200
    assert (await api.get(f"/api/v3/clients/{client['id']}")).body == client


def _odd_queries_paths_and_methods(cid: int) -> list[Odd]:
    return [
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
        ("DELETE", "/api/v3/clients/abc", {}, 404),
    ]


def _odd_headers(cid: int) -> list[Odd]:
    return [
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
    ]


def _odd_bodies(cid: int) -> list[Odd]:
    return [
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
    ]


async def test_no_odd_query_path_or_method_makes_the_service_answer_500(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves odd query strings (unicode digits, NUL, overlong numbers), odd path ids
    and unsupported methods get their exact 422, 404 or 405, by walking the table."""
    client = await api.create_client(business_name="Odd")
    odd = _odd_queries_paths_and_methods(client["id"])
    await _assert_each_refused_and_nothing_changed(
        api, business, admin_pool, client, odd
    )


async def test_no_odd_header_makes_the_service_answer_500(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves odd X-Ledger-Min-Position, If-Match and Idempotency-Key values get their
    exact 422 or 412, by walking the table."""
    client = await api.create_client(business_name="Odd")
    odd = _odd_headers(client["id"])
    await _assert_each_refused_and_nothing_changed(
        api, business, admin_pool, client, odd
    )


async def test_no_odd_body_makes_the_service_answer_500(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves odd field values (unicode digits, huge numbers, objects and lists where
    a scalar belongs, exponents beyond any decimal) get a 422, by walking the
    table."""
    client = await api.create_client(business_name="Odd")
    odd = _odd_bodies(client["id"])
    await _assert_each_refused_and_nothing_changed(
        api, business, admin_pool, client, odd
    )
