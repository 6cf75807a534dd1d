"""Routing details schemathesis found: a fixed path is never taken for a client id,
a 405 names the allowed methods, and malformed input is a 422 before a stale If-Match
is a 412."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

METHOD_NOT_ALLOWED = {"message": "Method Not Allowed"}


async def test_a_method_a_fixed_path_lacks_is_a_405_naming_the_allowed_ones(
    service: TestClient, business: dict[str, Any]
) -> None:
    """`/clients/category` and `/clients/categories` were taken for client ids by the
    `/clients/{id}` routes: DELETE and POST answered 404 "Not Found" (and an Allow
    header, had there been one, listed the client routes' methods)."""
    headers = business["headers"]
    for method, path, allowed in [
        ("DELETE", "/api/v3/clients/category", "POST"),
        ("GET", "/api/v3/clients/category", "POST"),
        ("POST", "/api/v3/clients/categories", "GET,HEAD"),
        ("DELETE", "/api/v3/clients/summary", "GET,HEAD"),
    ]:
        response = await service.request(method, path, headers=headers)
        assert response.status == 405, (method, path)
        assert response.headers["Allow"] == allowed, (method, path)
        assert await response.json() == METHOD_NOT_ALLOWED


async def test_a_non_numeric_client_id_is_still_a_404(
    service: TestClient, business: dict[str, Any]
) -> None:
    headers = business["headers"]
    for method, path in [
        ("GET", "/api/v3/clients/abc"),
        ("POST", "/api/v3/clients/abc"),
        ("DELETE", "/api/v3/clients/abc"),
        ("GET", "/api/v3/clients/abc/transactions"),
        ("POST", "/api/v3/clients/1/transactions/x/reverse"),
        ("GET", "/api/v3/clients/%C2%B2"),  # "²": a digit to str.isdigit, not to us
    ]:
        response = await service.request(method, path, headers=headers)
        assert response.status == 404, (method, path)
        assert await response.json() == {"message": "Not Found"}


async def test_a_malformed_update_is_a_422_even_with_a_stale_if_match(
    service: TestClient, business: dict[str, Any], pool: asyncpg.Pool
) -> None:
    """An invalid field or Idempotency-Key answers 422 before If-Match is compared
    (it answered 412, which said nothing of the malformed input)."""
    headers = business["headers"]
    created = await service.post(
        "/api/v3/clients", json={"business_name": "Routing"}, headers=headers
    )
    assert created.status == 201
    client_id = (await created.json())["id"]
    before = await pool.fetchval("SELECT count(*) FROM events")
    path = f"/api/v3/clients/{client_id}"
    bad_field = await service.post(
        path,
        json={"business_email": "not an email"},
        headers={**headers, "If-Match": '"99"'},
    )
    assert bad_field.status == 422
    assert (await bad_field.json())["errors"] == {
        "business_email": ["The business email must be a valid email address."]
    }
    bad_key = await service.post(
        path,
        json={"first_name": "A"},
        headers={**headers, "If-Match": '"99"', "Idempotency-Key": " "},
    )
    assert bad_key.status == 422
    assert (await bad_key.json())["errors"] == {
        "Idempotency-Key": [
            "The Idempotency-Key must be 1 to 255 printable ASCII characters."
        ]
    }
    stale = await service.post(
        path, json={"first_name": "A"}, headers={**headers, "If-Match": '"99"'}
    )
    assert stale.status == 412
    assert await pool.fetchval("SELECT count(*) FROM events") == before


async def test_an_if_match_too_long_to_be_a_version_is_a_412(
    service: TestClient, business: dict[str, Any], pool: asyncpg.Pool
) -> None:
    """An If-Match of 5,000 digits (past what int() converts) is a tag that matches
    no version: a 412 that writes nothing, as any other mismatch, never a 500."""
    headers = business["headers"]
    created = await service.post(
        "/api/v3/clients", json={"business_name": "Long tag"}, headers=headers
    )
    assert created.status == 201
    client_id = (await created.json())["id"]
    before = await pool.fetchval("SELECT count(*) FROM events")
    for tag in ("9" * 5000, '"' + "9" * 5000 + '"'):
        answer = await service.post(
            f"/api/v3/clients/{client_id}",
            json={"first_name": "A"},
            headers={**headers, "If-Match": tag},
        )
        assert (answer.status, await answer.json()) == (
            412,
            {"message": "The If-Match header does not match the client's ETag"},
        )
    assert await pool.fetchval("SELECT count(*) FROM events") == before
