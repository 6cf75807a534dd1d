"""PostgreSQL: the tools services/bootstrap.py opens connections with (the jsonb codec,
the bounded pool), and database creation and migrations on a connection it opened.

Only the bootstrap calls connect() and create_pool() (tests/unit/test_bootstrap.py):
there each pool and connection of the service is named, sized and timed.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import asyncpg
import asyncpg.pool
import msgspec

from shared.errors import PoolExhausted

SQL_DIR = Path(__file__).parent / "sql"
# PostgreSQL unreachable, refusing connections, shutting down or gone mid-statement:
# worth retrying later. After one of these, a COMMIT in flight may or may not have
# been applied.
CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)
# A read on a replica waits at most this for a lock: replay holds ACCESS EXCLUSIVE
# while it applies `ledger replay`'s swap, and a read would queue behind it for up to
# the standby's max_standby_streaming_delay; cancelled, it goes to the primary.
REPLICA_LOCK_TIMEOUT_MS = 100
_MIGRATION_LOCK = 7_170_001  # pg_advisory_lock key serializing concurrent migrators


async def _init_connection(conn: asyncpg.Connection) -> None:
    """jsonb in its binary format (a version byte, then the JSON text): COPY, which
    asyncpg speaks in binary only, refuses a text-format codec. The encoder passes
    msgspec.Raw through as it is: JSON encoded ahead, by event_store's bulk mode."""
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: b"\x01" + msgspec.json.encode(value),
        decoder=lambda data: msgspec.json.decode(data[1:]),
        schema="pg_catalog",
        format="binary",
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pooled connections are released without asyncpg's default reset (unlisten,
    unlock, RESET ALL: a round trip per release). Nothing pooled leaves session
    state behind: LISTEN and advisory locks use connections of their own, and
    transactions are always closed by their context managers."""


class _BoundedAcquire:
    """pool.acquire() whose wait for a free connection ends after `timeout_s` with
    PoolExhausted (a 503 with Retry-After at the HTTP edge), not a TimeoutError that
    reads like a lost server."""

    def __init__(
        self, inner: asyncpg.pool.PoolAcquireContext, timeout_s: float
    ) -> None:
        self._inner = inner
        self._timeout_s = timeout_s

    async def __aenter__(self) -> asyncpg.Connection:
        try:
            return await self._inner.__aenter__()
        except TimeoutError:
            raise PoolExhausted(self._timeout_s) from None

    async def __aexit__(self, *exc_info: object) -> None:
        await self._inner.__aexit__(*exc_info)

    def __await__(self) -> Generator[object, None, asyncpg.Connection]:
        return self._acquire().__await__()

    async def _acquire(self) -> asyncpg.Connection:
        try:
            return await self._inner
        except TimeoutError:
            raise PoolExhausted(self._timeout_s) from None


class BoundedPool(asyncpg.Pool):  # type: ignore[misc]
    """A pool whose every acquire (the pool's own fetch/execute included, which
    acquire through this method) waits at most `acquire_timeout_s` unless the caller
    gives its own timeout. Without it, a request waited as long as every connection
    stayed busy."""

    def __init__(
        self, *args: object, acquire_timeout_s: float, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)
        self._acquire_timeout_s = acquire_timeout_s

    def acquire(self, *, timeout: float | None = None) -> _BoundedAcquire:
        timeout_s = self._acquire_timeout_s if timeout is None else timeout
        return _BoundedAcquire(super().acquire(timeout=timeout_s), timeout_s)


# Plans that look rows up by index whatever the tables' size (index_plans below).
INDEX_PLANS = {
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
    "enable_seqscan": "off",
}


async def create_pool(
    dsn: str,
    *,
    max_size: int = 10,
    index_plans: bool = False,
    acquire_timeout_s: float | None = None,
    connect_timeout_s: float = 60.0,
    server_settings: Mapping[str, str] | None = None,
) -> asyncpg.Pool:
    """A pool; with `index_plans`, its sessions join by nested loops and read a table
    whole only where no index serves (INDEX_PLANS), so that every plan of a
    statement, the generic one PostgreSQL caches after five executions included,
    looks rows up by index however small the tables were when it was made.
    Projectors want that: a generic plan cached while a table was small (a
    sequential scan) was kept as the table grew, and a 100,000-client import made
    each tracking lookup take 0.4 s. (They planned every execution instead, until
    planning was a third of their backend's CPU at concurrency 1.) With
    `acquire_timeout_s`, waiting for a connection is bounded (BoundedPool); without,
    it is not (the workers, which have nobody to answer). `connect_timeout_s` bounds
    each new connection's opening (asyncpg's default, 60 s); `server_settings` are
    set on each session as it opens."""
    settings = {**(INDEX_PLANS if index_plans else {}), **(server_settings or {})}
    options: dict[str, object] = {
        "min_size": 1,
        "max_size": max_size,
        "command_timeout": 60,
        "init": _init_connection,
        "reset": _keep_session,
        "server_settings": settings,
        "timeout": connect_timeout_s,
    }
    if acquire_timeout_s is None:
        pool = await asyncpg.create_pool(dsn, **options)
    else:
        # asyncpg.create_pool's own defaults, spelled out: it cannot build a subclass.
        pool = await BoundedPool(
            dsn,
            acquire_timeout_s=acquire_timeout_s,
            connection_class=asyncpg.Connection,
            record_class=asyncpg.Record,
            max_queries=50_000,
            max_inactive_connection_lifetime=300.0,
            loop=None,
            **options,
        )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    """A connection with the jsonb codec the pools' connections have."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


def replica_sessions(statement_timeout_ms: int) -> dict[str, str]:
    """Every read session's settings on a replica (the pool's and a fold worker's):
    REPLICA_LOCK_TIMEOUT_MS and LEDGER_REPLICA_STATEMENT_TIMEOUT_MS. Either cancels
    the statement, and services/http/replica_reads.py sends the read to the primary."""
    return {
        "lock_timeout": str(REPLICA_LOCK_TIMEOUT_MS),
        "statement_timeout": str(statement_timeout_ms),
    }


def with_server_settings(dsn: str, settings: Mapping[str, str]) -> str:
    """The DSN with `settings` added to its query: asyncpg sends the query's
    parameters it does not know as server settings of the session."""
    parts = urlsplit(dsn)
    added = urlencode(dict(settings))
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit(parts._replace(query=query))


def with_user(dsn: str, user: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def database_name(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/") or "postgres"


async def create_database(conn: asyncpg.Connection, name: str) -> bool:
    """Create the database `name` if it is missing, on a connection to another
    database of the server; True when it was created."""
    exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    if exists:
        return False
    quoted = '"' + name.replace('"', '""') + '"'
    await conn.execute(f"CREATE DATABASE {quoted}")
    return True


def shared_migrations() -> list[tuple[str, str]]:
    return [(path.name, path.read_text()) for path in sorted(SQL_DIR.glob("*.sql"))]


async def apply_migrations(
    conn: asyncpg.Connection, migrations: Sequence[tuple[str, str]]
) -> list[str]:
    """Apply each (name, SQL) not yet applied, in order; returns the names applied.
    Concurrent migrators take turns on an advisory lock, held until `conn` closes."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    rows = await conn.fetch("SELECT name FROM schema_migrations")
    done = {row["name"] for row in rows}
    for name, sql in migrations:
        if name in done:
            continue
        async with conn.transaction():
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
        applied.append(name)
    return applied
