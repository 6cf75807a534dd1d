"""The "in progress" claim of an Idempotency-Key (services/command_api/idempotency.py)
when another API process still holds it in PostgreSQL: played here by a session that
holds the key's advisory lock, as a process whose unlock has not arrived yet does
(it answers first, and its unlock goes with its next claims batch)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from services.http.session_locks import lock_key
from tests.integration.scenarios import id_of
from tests.support.environment import Environment

Service = TestClient[web.Request, web.Application]
IN_PROGRESS = {"message": "A request with this Idempotency-Key is in progress"}


@asynccontextmanager
async def held_elsewhere(
    environment: Environment, business_id: int, key: str
) -> AsyncIterator[None]:
    """The key's claim held by another session (waiting for this process's own
    unlock of it, if that has not arrived yet)."""
    other = await asyncpg.connect(environment.settings.database_url)
    try:
        claim = lock_key("idempotency", business_id, key)
        await other.execute("SELECT pg_advisory_lock($1)", claim)
        yield
    finally:
        await other.close()


async def test_a_retry_while_the_answered_key_is_still_held_elsewhere_is_replayed(
    service: Service, environment: Environment, business: dict[str, object]
) -> None:
    """A client created with a key, then the key's claim held by another session as a
    process that answered but has not unlocked yet: a retry with the key answers 201
    with the first body, marked replayed, instead of 409 "in progress"."""
    key, headers = str(uuid.uuid4()), business["headers"]
    assert isinstance(headers, dict)
    keyed = {**headers, "Idempotency-Key": key}
    body = {"business_name": "Retried Ltd"}
    first = await service.post("/api/v3/clients", json=body, headers=keyed)
    assert first.status == 201
    async with held_elsewhere(environment, id_of(business), key):
        again = await service.post("/api/v3/clients", json=body, headers=keyed)
        assert (again.status, await again.read()) == (201, await first.read())
        assert again.headers["Idempotent-Replayed"] == "true"


async def test_a_key_held_elsewhere_with_no_answer_stored_is_still_in_progress(
    service: Service,
    environment: Environment,
    pool: asyncpg.Pool,
    business: dict[str, object],
) -> None:
    """A key no request has answered yet, held by another session: 409 with the "in
    progress" body, and no answer is stored for it."""
    key, headers = str(uuid.uuid4()), business["headers"]
    assert isinstance(headers, dict)
    keyed = {**headers, "Idempotency-Key": key}
    async with held_elsewhere(environment, id_of(business), key):
        refused = await service.post(
            "/api/v3/clients", json={"business_name": "Held Ltd"}, headers=keyed
        )
        assert (refused.status, await refused.json()) == (409, IN_PROGRESS)
    stored = await pool.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE business_id = $1 AND key = $2",
        id_of(business),
        key,
    )
    assert stored == 0
