"""The API's key cache (services/http/api_key_cache.py): verified keys are served from
memory, and a revocation drops them as soon as its NOTIFY arrives (migration 0012's
triggers); while no connection listens, nothing is cached."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services import bootstrap
from services.http.api_key_cache import ApiKeyCache
from services.http.projection_wait import WAITER, ProjectionWaiter
from shared.store import api_keys
from tests.support.environment import Environment

# How long a revocation's notification may take to reach the API, and how often the
# tests ask meanwhile: a refusal is awaited on this deadline, never after a sleep.
NOTIFY_DEADLINE_S = 5.0
ASK_S = 0.005
# ListenConnection.REOPEN_PAUSE_S, plus the time to connect.
REOPEN_DEADLINE_S = 10.0


async def _status(service: TestClient, key: str) -> int:
    reply = await service.get(
        "/api/v3/clients/categories", headers={"Authorization": f"Bearer {key}"}
    )
    await reply.read()
    return reply.status


async def _until(
    check: Callable[[], Awaitable[bool]], deadline_s: float, what: str
) -> int:
    """Ask `check` every ASK_S until it is true; returns how many times it was not."""
    deadline, misses = time.monotonic() + deadline_s, 0
    while not await check():
        misses += 1
        assert time.monotonic() < deadline, f"not true within {deadline_s} s: {what}"
        await asyncio.sleep(ASK_S)
    return misses


@pytest.fixture
async def second_key(
    admin: asyncpg.Connection, business: dict[str, Any]
) -> tuple[int, str]:
    """(key id, key) of a second key of the business, made as `ledger key create`."""
    return await api_keys.create_key(admin, business["business_id"])


async def test_a_revoked_key_is_refused_once_its_notification_arrives(
    service: TestClient, admin: asyncpg.Connection, second_key: tuple[int, str]
) -> None:
    """Proves a cached key stops working on its revocation's commit: the key is used
    (so cached), revoked as `ledger key revoke` does, then asked for every 5 ms until
    it is refused (401), on a deadline; once refused it stays refused."""
    key_id, key = second_key
    cache = service.app[WAITER].api_keys
    assert await _status(service, key) == 200
    assert cache.trusted and len(cache) >= 1
    assert await api_keys.revoke_key(admin, key_id)

    async def refused() -> bool:
        return await _status(service, key) == 401

    await _until(refused, NOTIFY_DEADLINE_S, "the revoked key refused")
    for _ in range(3):
        assert await _status(service, key) == 401


async def test_cached_keys_need_no_query_and_any_change_drops_them_all(
    service: TestClient,
    admin: asyncpg.Connection,
    business: dict[str, Any],
    second_key: tuple[int, str],
) -> None:
    """Proves the cache is what answers, and that its triggers are what end it: with
    the trigger off, a revoked key is still accepted (no query was made for it); the
    revocation of another key, with the trigger on, drops every cached key, and the
    first one is refused from then on."""
    key_id, key = second_key
    assert await _status(service, key) == 200
    await admin.execute("ALTER TABLE api_keys DISABLE TRIGGER api_keys_changed")
    try:
        assert await api_keys.revoke_key(admin, key_id)
    finally:
        await admin.execute("ALTER TABLE api_keys ENABLE TRIGGER api_keys_changed")
    assert await _status(service, key) == 200  # served from the cache

    third_id, third = await api_keys.create_key(admin, business["business_id"])
    assert await api_keys.revoke_key(admin, third_id)

    async def refused() -> bool:
        return await _status(service, key) == 401

    await _until(refused, NOTIFY_DEADLINE_S, "every cached key dropped")
    assert await _status(service, third) == 401
    assert await _status(service, business["api_key"]) == 200


Listening = tuple[ProjectionWaiter, asyncpg.Connection]
StartListening = Callable[..., Awaitable[Listening]]


@pytest.fixture
async def listening(
    environment: Environment, pool: asyncpg.Pool
) -> AsyncIterator[StartListening]:
    """Start a waiter on a LISTEN connection of its own (as the API's app does);
    `reopen=True` gives it the bootstrap's opener. Returns (waiter, connection)."""
    started: list[Listening] = []

    async def start(reopen: bool = False) -> Listening:
        settings = environment.settings

        async def opener() -> asyncpg.Connection:
            return await bootstrap.read_your_writes_listener(settings)

        listener = await opener()
        waiter = ProjectionWaiter(pool, listener, reopen=opener if reopen else None)
        await waiter.start()
        started.append((waiter, listener))
        return waiter, listener

    yield start
    for waiter, listener in started:
        await waiter.stop()
        await listener.close()


async def _lose(admin: asyncpg.Connection, cache: ApiKeyCache, pid: int) -> None:
    """End the LISTEN connection's backend, as a server restart would."""
    assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)

    async def distrusted() -> bool:
        # The connection reads as closed a moment before its loss is handled
        # (distrust(), which drops the entries): wait for both.
        return not cache.trusted and len(cache) == 0

    await _until(distrusted, NOTIFY_DEADLINE_S, "the cache distrusted and emptied")


async def test_without_its_listener_the_cache_keeps_nothing(
    listening: StartListening,
    pool: asyncpg.Pool,
    admin: asyncpg.Connection,
    business: dict[str, Any],
    second_key: tuple[int, str],
) -> None:
    """Proves a lost LISTEN connection stops the cache: its entries are dropped, each
    lookup then asks PostgreSQL and keeps nothing, so a revocation whose notification
    can no longer arrive is still seen at the next lookup."""
    waiter, listener = await listening()
    cache = waiter.api_keys
    key_id, key = second_key
    assert await cache.business(pool, key) is not None
    assert len(cache) == 1
    await _lose(admin, cache, listener.get_server_pid())
    assert len(cache) == 0
    assert await cache.business(pool, business["api_key"]) is not None
    assert len(cache) == 0
    assert await api_keys.revoke_key(admin, key_id)
    assert await cache.business(pool, key) is None


async def test_a_reopened_listener_lets_the_cache_keep_keys_again(
    listening: StartListening,
    pool: asyncpg.Pool,
    admin: asyncpg.Connection,
    second_key: tuple[int, str],
) -> None:
    """Proves the cache comes back with its connection: after the loss the waiter
    opens a new LISTEN connection (the bootstrap's opener), the cache keeps keys
    again, and a revocation's notification, through the new connection, drops them."""
    waiter, listener = await listening(reopen=True)
    cache = waiter.api_keys
    key_id, key = second_key
    await _lose(admin, cache, listener.get_server_pid())

    async def trusted() -> bool:
        return cache.trusted

    await _until(trusted, REOPEN_DEADLINE_S, "a new LISTEN connection")
    assert await cache.business(pool, key) is not None
    assert len(cache) == 1
    assert await api_keys.revoke_key(admin, key_id)

    async def dropped() -> bool:
        return len(cache) == 0

    await _until(dropped, NOTIFY_DEADLINE_S, "the notification on the new connection")
    assert await cache.business(pool, key) is None
