"""The connection cut at COMMIT, for real: a `ledger api` process held by the test-only
pause point LEDGER_TEST_PAUSE_AT=api.before_commit (rows inserted, transaction open)
has its PostgreSQL backend terminated with pg_terminate_backend, then is released, so
its COMMIT meets a dead connection (services/command_api/appender.py, `_write`).

Each test has a database of its own (no relay or projector: commands send
`Prefer: respond-async`), because one of them refuses every new connection to it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest

from services.cli.businesses import provision_business
from shared.store.postgres import with_database
from tests.e2e.api_processes import ApiProcess, ApiProcesses
from tests.e2e.commit_cutter import CommitCutter
from tests.e2e.deadlines import wait_until
from tests.support.environment import Environment, create_environment, drop_environment

BACKENDS_GONE_DEADLINE_S = 30.0
UNKNOWN_MESSAGE = (
    "The outcome of the request is unknown; retry it with the same Idempotency-Key"
)
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable; retry"


@pytest.fixture
def api_processes(tmp_path: Path) -> Iterator[ApiProcesses]:
    processes = ApiProcesses(tmp_path)
    yield processes
    processes.stop_all()


@pytest.fixture
async def own(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    environment = await create_environment(*servers, tag="unknown")
    yield environment
    await _allow_connections(environment, allowed=True)
    await drop_environment(environment)


async def _server(environment: Environment) -> asyncpg.Connection:
    """A superuser connection to the server's `postgres` database, which stays
    reachable while the test's database refuses connections."""
    return await asyncpg.connect(with_database(environment.server_url, "postgres"))


def _database(environment: Environment) -> str:
    return environment.admin_url.rsplit("/", 1)[-1]


async def _allow_connections(environment: Environment, *, allowed: bool) -> None:
    conn = await _server(environment)
    try:
        state = "true" if allowed else "false"
        await conn.execute(
            f'ALTER DATABASE "{_database(environment)}" ALLOW_CONNECTIONS {state}'
        )
    finally:
        await conn.close()


async def _terminate(environment: Environment, where: str) -> None:
    """Terminate the database's backends matching `where`, and wait until they are
    gone (pg_terminate_backend only signals them)."""
    conn = await _server(environment)
    query = f"FROM pg_stat_activity WHERE datname = $1 AND ({where})"
    try:
        await conn.fetch(
            f"SELECT pg_terminate_backend(pid) {query}", _database(environment)
        )

        async def gone() -> bool:
            count = await conn.fetchval(
                f"SELECT count(*) {query}", _database(environment)
            )
            return bool(count == 0)

        await wait_until(gone, BACKENDS_GONE_DEADLINE_S, "the backends ended")
    finally:
        await conn.close()


async def _keyed_create(api: ApiProcess, api_key: str, key: str) -> Any:
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Idempotency-Key": key,
        "Prefer": "respond-async",
    }
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
        http.post(
            api.base_url + "/api/v3/clients",
            json={"business_name": "Cut at commit"},
            headers=headers,
        ) as response,
    ):
        return response.status, response.headers, await response.read()


async def _events_with_key(environment: Environment, key: str) -> list[str]:
    conn = await asyncpg.connect(environment.admin_url)
    try:
        rows = await conn.fetch(
            "SELECT type FROM events WHERE metadata->>'idempotency_key' = $1"
            " ORDER BY position",
            key,
        )
    finally:
        await conn.close()
    return [row["type"] for row in rows]


async def _paused_command(
    own: Environment,
    api_processes: ApiProcesses,
    key: str,
    overrides: dict[str, str] | None = None,
) -> tuple[ApiProcess, str, Any]:
    """A `ledger api` holding a keyed client creation just before its COMMIT."""
    business = await provision_business(own.settings, f"Cut {uuid.uuid4().hex[:8]}")
    api_key = str(business["api_key"])
    api = await api_processes.start(
        own,
        "paused",
        {"LEDGER_TEST_PAUSE_AT": "api.before_commit", **(overrides or {})},
    )
    pending = asyncio.ensure_future(_keyed_create(api, api_key, key))
    await api.wait_for_log("test pause at api.before_commit")
    return api, api_key, pending


async def _retried_once(
    own: Environment, api: ApiProcess, api_key: str, key: str
) -> None:
    """The keyed retry writes the command once, and a second retry replays it."""
    status, headers, raw = await _keyed_create(api, api_key, key)
    assert (status, "Idempotent-Replayed" in headers) == (202, False), raw
    assert await _events_with_key(own, key) == ["client.created"]
    replay_status, replay_headers, replay_raw = await _keyed_create(api, api_key, key)
    assert (replay_status, replay_headers["Idempotent-Replayed"]) == (202, "true")
    assert replay_raw == raw
    assert await _events_with_key(own, key) == ["client.created"]


async def test_commit_whose_outcome_cannot_be_learned_answers_503_and_retry_writes_once(
    own: Environment, api_processes: ApiProcesses
) -> None:
    """A COMMIT cut off while the store also refuses the appender's question "did it
    commit?" answers 503 with Retry-After (never a 500), writes nothing, and the keyed
    retry writes exactly one event: the held backend is terminated and the database
    refuses new connections (ALLOW_CONNECTIONS false) until the 503 has arrived."""
    key = str(uuid.uuid4())
    api, api_key, pending = await _paused_command(own, api_processes, key)
    await _allow_connections(own, allowed=False)
    await _terminate(own, "true")
    api.release()
    status, headers, raw = await pending
    await _allow_connections(own, allowed=True)
    assert (status, headers.get("Retry-After")) == (503, "1"), raw
    assert raw == b'{"message":"' + UNKNOWN_MESSAGE.encode() + b'"}'
    assert await _events_with_key(own, key) == []
    await _retried_once(own, api, api_key, key)


async def test_commit_cut_and_found_not_applied_answers_503_and_retry_writes_once(
    own: Environment, api_processes: ApiProcesses
) -> None:
    """A COMMIT cut off whose outcome the appender then learns from the store (not
    applied) answers 503 with Retry-After, and the keyed retry writes exactly one
    event: only the held backend (idle in its open transaction) is terminated."""
    key = str(uuid.uuid4())
    api, api_key, pending = await _paused_command(own, api_processes, key)
    await _terminate(own, "state = 'idle in transaction'")
    api.release()
    status, headers, raw = await pending
    assert (status, headers.get("Retry-After")) == (503, "1"), raw
    assert raw == b'{"message":"' + UNAVAILABLE_MESSAGE.encode() + b'"}'
    assert await _events_with_key(own, key) == []
    await _retried_once(own, api, api_key, key)


@pytest.fixture
async def cutter(own: Environment) -> AsyncIterator[CommitCutter]:
    parts = urlsplit(own.settings.database_url)
    proxy = CommitCutter(parts.hostname or "127.0.0.1", parts.port or 5432)
    yield proxy
    await proxy.close()


async def test_commit_applied_whose_reply_is_lost_answers_its_result_once(
    own: Environment, api_processes: ApiProcesses, cutter: CommitCutter
) -> None:
    """A COMMIT that PostgreSQL applied but whose reply never reached the API is
    settled by asking the store: the first answer is the command's own 202 (not a
    503), over exactly one event, and the keyed retry replays it. The API reaches
    PostgreSQL through a proxy that drops that one reply and closes the connection."""
    port = await cutter.start()
    parts = urlsplit(own.settings.database_url)
    through_proxy = parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}")
    key = str(uuid.uuid4())
    api, api_key, pending = await _paused_command(
        own, api_processes, key, {"LEDGER_DATABASE_URL": through_proxy.geturl()}
    )
    cutter.arm()
    api.release()
    status, headers, raw = await pending
    assert cutter.reply_lost.is_set()
    assert (status, "Idempotent-Replayed" in headers) == (202, False), raw
    assert json.loads(raw)["business_name"] == "Cut at commit"
    assert await _events_with_key(own, key) == ["client.created"]
    replay_status, replay_headers, replay_raw = await _keyed_create(api, api_key, key)
    assert (replay_status, replay_headers["Idempotent-Replayed"]) == (202, "true")
    assert replay_raw == raw
    assert await _events_with_key(own, key) == ["client.created"]
