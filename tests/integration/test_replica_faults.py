"""A replica's faults stay that replica's: one that never answers does not keep reads
from the healthy standby, long reads filling the standby's pool do not take it out,
and a read blocked on the standby by a lock replay holds goes to the primary after the
replica sessions' lock_timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from services.http.replica_polls import replica_name
from services.http.replica_reads import ROTATION
from tests.integration.replica_service import (
    replica_metric,
    replica_state,
    wait_in_rotation,
)
from tests.integration.scenarios import wait_until
from tests.support.environment import Environment
from tests.support.service import http_client
from tests.support.standby import replica_url, require_standby, with_replica

Headers = dict[str, str]
ROUNDS = 6


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A local port that accepts connections and never answers, as a replica host
    that drops every packet after the handshake would: its port."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


async def _debit_then_read(
    client: TestClient, headers: Headers, rounds: int
) -> list[tuple[int, float]]:
    created = await client.post(
        "/api/v3/clients", json={"business_name": "Faults"}, headers=headers
    )
    assert created.status == 201, await created.text()
    client_id = (await created.json())["id"]
    seen = []
    for _ in range(rounds):
        posted = await client.post(
            f"/api/v3/clients/{client_id}/transactions",
            json={"type": "debit", "amount": "1.00"},
            headers=headers,
        )
        read = await client.get(f"/api/v3/clients/{client_id}", headers=headers)
        assert read.status == 200, await read.text()
        seen.append((posted.status, (await read.json())["unformated_balance"]))
    return seen


async def test_a_replica_that_never_answers_leaves_the_healthy_standby_in_use(
    environment: Environment,
    service: TestClient,
    business: dict[str, Any],
) -> None:
    """Proves a replica's polls do not wait for one another: with a second replica
    on a port that accepts and never answers (each poll of it waits 0.5 s to connect,
    then fails), the standby still comes into rotation (its view and polls stay
    young), reads go to it and see every write, and the silent one stays out (never
    joined: no command waits for it) with its poll error."""
    await require_standby()
    async with silent_server() as port:
        silent = f"postgresql://ledger_app@127.0.0.1:{port}/silent"
        urls = f"{replica_url(environment)},{silent}"
        settings = with_replica(environment, read_database_urls=urls)
        standby = replica_name(replica_url(environment))
        async with http_client(settings) as client:
            await wait_in_rotation(client, True, standby)
            reads = await replica_metric(client, "ledger_replica_reads_total", standby)
            seen = await _debit_then_read(client, business["headers"], ROUNDS)
            assert seen == [(201, float(n)) for n in range(1, ROUNDS + 1)]
            after = await replica_metric(client, "ledger_replica_reads_total", standby)
            assert after > reads
            silent_name = replica_name(silent)

            async def timed_out() -> bool:  # its first poll may still be waiting
                state = await replica_state(client, silent_name)
                return state["error"] == "TimeoutError"

            await wait_until(timed_out, "the silent replica's poll to time out")
            state = await replica_state(client, silent_name)
            assert (state["state"], state["in_rotation"]) == ("out", False)


async def test_long_reads_filling_the_standby_pool_leave_it_in_rotation(
    environment: Environment,
    service: TestClient,
    business: dict[str, Any],
) -> None:
    """Proves the poll does not share the read pool: with both connections of the
    standby's pool (LEDGER_REPLICA_POOL_SIZE_MAX=2) held by long reads, every POST
    still answers 201 (its wait polled the standby on the poll's own connection),
    each GET goes to the primary at once (no read tried on the standby: no replica
    read, no fallback after a wait for its pool) and sees its write, and the standby
    stays in rotation without an error."""
    await require_standby()
    settings = with_replica(environment, replica_pool_size_max=2, replica_poll_ms=500)
    async with http_client(settings) as client:
        await wait_in_rotation(client, True)
        [replica] = client.server.app[ROTATION].replicas
        assert replica.pool is not None
        reads = await replica_metric(client, "ledger_replica_reads_total")
        fallbacks = await replica_metric(client, "ledger_replica_fallbacks_total")
        held = [await replica.pool.acquire() for _ in range(2)]
        try:
            seen = await _debit_then_read(client, business["headers"], ROUNDS)
        finally:
            for conn in held:
                await replica.pool.release(conn)
        assert seen == [(201, float(n)) for n in range(1, ROUNDS + 1)]
        assert await replica_metric(client, "ledger_replica_reads_total") == reads
        metric = "ledger_replica_fallbacks_total"
        assert await replica_metric(client, metric) == fallbacks
        state = await replica_state(client)
        assert (state["state"], state["error"]) == ("in", None)
        assert replica.poll_error is None


# The replica sessions' statement_timeout: the default (the lock_timeout, 100 ms,
# cancels the read first: LockNotAvailable), then one shorter than it (QueryCanceled);
# and `as_of`, whose fold worker reads the events on a connection of its own.
@pytest.mark.parametrize(
    ("statement_timeout_ms", "table", "query"),
    [
        (30_000, "rm_clients", {}),
        (50, "rm_clients", {}),
        (30_000, "events", {"as_of": "2100-01-01"}),
    ],
)
async def test_a_read_blocked_by_a_lock_replay_holds_goes_to_the_primary(
    environment: Environment,
    service: TestClient,
    business: dict[str, Any],
    statement_timeout_ms: int,
    table: str,
    query: dict[str, str],
) -> None:
    """Proves the replica sessions' timeouts: a transaction on the primary takes
    ACCESS EXCLUSIVE on the table the GET reads (rm_clients; the events for `as_of`),
    as `ledger replay`'s swap does on its tables, which the
    standby's replay takes too and holds until it ends; a GET then waits on the
    standby until its lock_timeout (100 ms) or a shorter statement_timeout (50 ms)
    cancels it, and goes to the primary (one fallback), where it waits for the lock;
    once the transaction ends it answers 200 with the client, and the standby is
    still in rotation (a cancellation is no fault of the replica)."""
    await require_standby()
    headers: Headers = business["headers"]
    settings = with_replica(
        environment,
        replica_poll_ms=500,
        replica_statement_timeout_ms=statement_timeout_ms,
    )
    async with http_client(settings) as client:
        await wait_in_rotation(client, True)
        created = await client.post(
            "/api/v3/clients", json={"business_name": "Locked"}, headers=headers
        )
        assert created.status == 201
        client_id = (await created.json())["id"]
        path = f"/api/v3/clients/{client_id}"
        read = await _get_while_replay_holds(
            environment, client, table, path, headers, query
        )
        assert read.status == 200, await read.text()
        body = msgspec.json.decode(await read.read())
        assert body["business_name"] == "Locked"
        assert (await replica_state(client))["state"] == "in"


async def _get_while_replay_holds(
    environment: Environment,
    client: TestClient,
    table: str,
    path: str,
    headers: Headers,
    query: dict[str, str],
) -> ClientResponse:
    """GET `path` while a transaction on the primary holds ACCESS EXCLUSIVE on
    `table` and the standby's replay holds it too; the transaction ends once the
    GET has fallen back to the primary (one fallback more), which it waits for."""
    fallbacks = await replica_metric(client, "ledger_replica_fallbacks_total")
    locker = await asyncpg.connect(environment.admin_url)
    flusher = await asyncpg.connect(environment.admin_url)
    standby = await asyncpg.connect(replica_url(environment))
    try:
        locking = locker.transaction()
        await locking.start()
        await locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        await wait_until(
            lambda: _replay_holds_lock(flusher, standby, table), "replay's lock"
        )
        reading = asyncio.ensure_future(client.get(path, headers=headers, params=query))

        async def fell_back() -> bool:
            metric = "ledger_replica_fallbacks_total"
            return await replica_metric(client, metric) == fallbacks + 1

        await wait_until(fell_back, "the read to fall back to the primary")
        await locking.rollback()
        return await reading
    finally:
        await locker.close()
        await flusher.close()
        await standby.close()


async def _replay_holds_lock(
    flusher: asyncpg.Connection, standby: asyncpg.Connection, table: str
) -> bool:
    """Whether the standby's replay holds the lock; first a commit of another
    transaction, which flushes the WAL before it (the lock's record among it: a
    standby is sent flushed WAL only, and an open transaction flushes nothing)."""
    await flusher.fetchval("SELECT pg_current_xact_id()")
    held = await standby.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'relation'"
        " AND relation = $1::regclass AND mode = 'AccessExclusiveLock'",
        table,
    )
    return bool(held)
