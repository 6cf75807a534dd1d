"""A worker's probe endpoints (services/cli/worker_health.py), served on a real port,
against
the real PostgreSQL and RabbitMQ and against servers that are not there."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec

from services.cli import worker_health
from shared.config import Settings
from shared.store.postgres import with_database
from tests.support.environment import Environment, free_port


async def _get(settings: Settings, path: str) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{settings.health_port}{path}"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.json()


async def test_a_worker_whose_servers_answer_is_alive_and_ready(
    environment: Environment,
) -> None:
    """On LEDGER_HEALTH_PORT, /healthz answers ok and /readyz finds PostgreSQL (as
    ledger_app) and RabbitMQ reachable."""
    settings = msgspec.structs.replace(environment.settings, health_port=free_port())
    async with worker_health.serving(settings):
        assert await _get(settings, "/healthz") == (200, {"status": "ok"})
        assert await _get(settings, "/readyz") == (
            200,
            {"status": "ready", "checks": {"postgres": "ok", "rabbitmq": "ok"}},
        )


async def test_a_worker_whose_servers_are_gone_is_alive_but_not_ready(
    environment: Environment,
) -> None:
    """With a database that does not exist and a broker port where nothing listens,
    /healthz still answers ok (restarting would not help) and /readyz answers 503
    naming each failure."""
    closed = free_port()
    settings = msgspec.structs.replace(
        environment.settings,
        health_port=free_port(),
        database_url=with_database(environment.settings.database_url, "no_such_db"),
        amqp_url=f"amqp://guest:guest@127.0.0.1:{closed}/",
    )
    async with worker_health.serving(settings):
        assert await _get(settings, "/healthz") == (200, {"status": "ok"})
        status, body = await _get(settings, "/readyz")
    assert status == 503
    assert body == {
        "status": "not ready",
        "checks": {
            "postgres": "failed: InvalidCatalogNameError",
            "rabbitmq": "failed: AMQPConnectionError",
        },
    }
