"""SessionLocks (services/http/session_locks.py) on the real PostgreSQL: a silent
server fails a batch within the timeout instead of holding every claim behind it; a
request cancelled after its lock was granted gives the lock back; a session closed
between batches is replaced with its claims forgotten and a warning; a statement that
fails on a live session undoes what it took and keeps the other claims."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import msgspec
import pytest

from services import bootstrap
from services.http.session_locks import SessionLocks, lock_key
from tests.integration.scenarios import wait_until
from tests.support.environment import Environment

TIMEOUT_S = 1.0
# What a test waits at most for what must happen within TIMEOUT_S (a guard against a
# hang, not a measure).
DEADLINE_S = 30.0
REFUSED = 4_242  # the key the failing lock function refuses


def new_key() -> int:
    return lock_key("test", str(uuid.uuid4()))


async def held_elsewhere(admin: asyncpg.Connection, key: int) -> bool:
    """Whether another session holds `key` (tried, and given back if taken here)."""
    if await admin.fetchval("SELECT pg_try_advisory_lock($1)", key):
        await admin.execute("SELECT pg_advisory_unlock($1)", key)
        return False
    return True


class SilentProxy:
    """A TCP relay to PostgreSQL that can go silent: it keeps every socket open and
    passes nothing on, as a server whose host or network went away does."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port, self.silent = host, port, False
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        upstream_reader, upstream = await asyncio.open_connection(self.host, self.port)
        self._writers += [writer, upstream]
        await asyncio.gather(
            self._pipe(reader, upstream),
            self._pipe(upstream_reader, writer),
            return_exceptions=True,
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await reader.read(65_536):
                if not self.silent:
                    writer.write(data)
                    await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def proxy(environment: Environment) -> AsyncIterator[tuple[SilentProxy, str]]:
    """A SilentProxy to the session's PostgreSQL, and the application's URL via it."""
    url = urlsplit(environment.settings.database_url)
    relay = SilentProxy(url.hostname or "127.0.0.1", url.port or 5432)
    port = await relay.start()
    user = url.netloc.rsplit("@", 1)[0]
    yield relay, url._replace(netloc=f"{user}@127.0.0.1:{port}").geturl()
    await relay.close()


async def test_a_silent_server_fails_a_batch_within_the_timeout(
    environment: Environment,
    admin: asyncpg.Connection,
    proxy: tuple[SilentProxy, str],
) -> None:
    """Through a relay that goes silent, a claim fails with TimeoutError (the batch's
    statement timeout), then again (the new connection's connect timeout), and so
    does the API's claims connection itself, all well before the 30 s guard; the
    claim held before is forgotten and, the session closed, freed in PostgreSQL;
    once the relay speaks again, the next claim is taken on a new session."""
    relay, url = proxy
    settings = msgspec.structs.replace(
        environment.settings, database_url=url, pool_acquire_timeout_s=TIMEOUT_S
    )
    locks = SessionLocks(lambda: bootstrap.claims_connection(settings), TIMEOUT_S)
    first, second = new_key(), new_key()
    try:
        assert await locks.try_lock(first) is True
        relay.silent = True
        async with asyncio.timeout(DEADLINE_S):
            for _ in ("statement", "connect"):
                with pytest.raises(TimeoutError):
                    await locks.try_lock(second)
            with pytest.raises(TimeoutError):
                await bootstrap.claims_connection(settings)
        assert locks.held == set()
        await wait_until(
            lambda: _free(admin, first), "the lost session's claim to be freed"
        )
        relay.silent = False
        assert await locks.try_lock(second) is True
        assert await held_elsewhere(admin, second) is True
    finally:
        await relay.close()  # ends a statement still waiting on it, if any
        await locks.close()


async def _free(admin: asyncpg.Connection, key: int) -> bool:
    return not await held_elsewhere(admin, key)


class CancelsAfterFetch(asyncpg.Connection):  # type: ignore[misc]
    """A real connection that, once a statement's rows are in, schedules `after` to
    run before whoever those rows wake: the moment a cancellation can land between a
    lock's grant and its requester's resumption."""

    after: Callable[[], object] | None = None

    async def fetch(self, query: str, *args: Any, **options: Any) -> list[Any]:
        rows: list[Any] = await super().fetch(query, *args, **options)
        if self.after is not None:
            asyncio.get_running_loop().call_soon(self.after)
            self.after = None
        return rows


async def test_a_request_cancelled_after_its_lock_was_granted_gives_it_back(
    environment: Environment, admin: asyncpg.Connection
) -> None:
    """A claim whose task is cancelled just after its batch granted the lock raises
    CancelledError, keeps nothing in `held`, can be claimed again at once (not the
    assertion's 500), and once given back is free in PostgreSQL (held once, not
    twice)."""
    key, task = new_key(), None

    async def opener() -> asyncpg.Connection:
        conn = await asyncpg.connect(
            environment.settings.database_url, connection_class=CancelsAfterFetch
        )
        conn.after = lambda: task.cancel()  # type: ignore[union-attr]
        return conn

    locks = SessionLocks(opener, TIMEOUT_S * 5)
    try:
        task = asyncio.ensure_future(locks.try_lock(key))
        with pytest.raises(asyncio.CancelledError):
            await task
        assert key not in locks.held
        assert await locks.try_lock(key) is True
        locks.unlock(key)
        assert await locks.try_lock(new_key()) is True  # after the unlock's batch
        assert await held_elsewhere(admin, key) is False
    finally:
        await locks.close()


async def test_a_session_closed_between_batches_is_replaced_and_its_claims_forgotten(
    environment: Environment,
    admin: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A claims session terminated by the server between two batches: the next
    claim opens a new session and is taken, the claim held on the old one is no
    longer in `held` (PostgreSQL freed it), and a warning says how many went."""
    opened: list[asyncpg.Connection] = []

    async def opener() -> asyncpg.Connection:
        opened.append(await asyncpg.connect(environment.settings.database_url))
        return opened[-1]

    locks, first, second = SessionLocks(opener, TIMEOUT_S * 5), new_key(), new_key()
    try:
        assert await locks.try_lock(first) is True
        pid = opened[0].get_server_pid()
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid) is True

        async def closed() -> bool:
            return bool(opened[0].is_closed())

        await wait_until(closed, "the client to see its session closed")
        with caplog.at_level(logging.WARNING, logger="services.http.session_locks"):
            assert await locks.try_lock(second) is True
        assert (locks.held, len(opened)) == ({second}, 2)
        assert [record.getMessage() for record in caplog.records] == [
            "the claims connection was closed; its 1 claims went with it"
        ]
        assert await held_elsewhere(admin, first) is False
    finally:
        await locks.close()


async def test_a_failed_statement_undoes_its_batch_and_keeps_the_other_claims(
    environment: Environment, admin: asyncpg.Connection
) -> None:
    """On a session whose pg_try_advisory_lock refuses one key with "out of memory"
    after the batch took another: both claims of that batch raise the error, the
    claim held before stays held (same session), and the key the failed statement
    had taken is given back in PostgreSQL."""
    schema = f"claims_{uuid.uuid4().hex[:8]}"
    await admin.execute(
        f"CREATE SCHEMA {schema};"
        f" CREATE FUNCTION {schema}.pg_try_advisory_lock(key bigint) RETURNS boolean"
        " LANGUAGE plpgsql AS $$ BEGIN"
        f" IF key = {REFUSED} THEN RAISE EXCEPTION 'out of shared memory'"
        " USING ERRCODE = '53200'; END IF;"
        " RETURN pg_catalog.pg_try_advisory_lock(key); END $$"
    )
    opened: list[asyncpg.Connection] = []

    async def opener() -> asyncpg.Connection:
        search_path = {"search_path": f"{schema}, pg_catalog"}
        conn = await asyncpg.connect(environment.admin_url, server_settings=search_path)
        opened.append(conn)
        return conn

    locks, kept, taken = SessionLocks(opener, TIMEOUT_S * 5), new_key(), new_key()
    try:
        assert await locks.try_lock(kept) is True
        outcomes = await asyncio.gather(
            locks.try_lock(taken), locks.try_lock(REFUSED), return_exceptions=True
        )
        assert [type(outcome) for outcome in outcomes] == [asyncpg.OutOfMemoryError] * 2
        assert locks.held == {kept}
        assert await locks.try_lock(new_key()) is True  # after the undo's batch
        assert len(opened) == 1
        assert await held_elsewhere(admin, taken) is False
        assert await held_elsewhere(admin, kept) is True
    finally:
        await locks.close()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
