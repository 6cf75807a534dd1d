"""Every pool and connection the service opens: each named here, with what it is for,
its size and its timeouts.

Nothing else in shared/, services/ or projections/ calls asyncpg.connect,
asyncpg.create_pool or aio_pika.connect, nor the tools that configure a connection
(shared/store/postgres.py: the jsonb codec, the bounded pool; shared/bus/broker.py: a
RobustConnection closed when it fails to open): tests/unit/test_bootstrap.py scans the
source for it. The client SDK (shared/client/) is the exception: it runs in other
teams' processes and connects to the broker on its own. The import's COPY runs on a
connection of the API's pool, like every other write.

Who asks:
- the API process: its app's setup (services/http/app.py) opens the pool and the
  LISTEN connection, and the replica rotation (services/http/replica_reads.py) a
  pool per read replica; /readyz's broker check (services/http/health.py) and the fold
  workers (services/http/fold_processes.py) open theirs here when they need one;
- the relay and the projectors: the CLI (services/cli/main.py) hands them these
  functions as openers, which they call again each time shared/worker/loop.py restarts
  them after a failure (projections/ may not import services/);
- the admin commands and the probes: the CLI (services/cli/).

Unless said otherwise, a connection is asyncpg's default: 60 s to connect, no
statement timeout, no jsonb codec (the event store's readers select JSON as text and
decode it themselves); a pool is shared/store/postgres.create_pool's: one connection
kept open, the jsonb codec, a 60 s statement timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import aio_pika
import asyncpg
from aio_pika.abc import AbstractConnection, AbstractRobustConnection

from shared.bus import broker
from shared.config import Settings
from shared.store import postgres

# /readyz (the API's and a worker's) answers within this even when a server hangs.
READINESS_TIMEOUT_S = 2.0
# `ledger run` and `ledger migrate` wait this long for each server before saying
# which one does not answer.
PREFLIGHT_TIMEOUT_S = 5.0
# A projector applies one batch at a time; `ledger business create` runs one
# transaction, then one append.
PROJECTOR_POOL_SIZE_MAX = 2
ADMIN_POOL_SIZE_MAX = 2
# Server-side keepalives on the API's claims session: a holder whose host vanished
# without closing its socket is dropped (its claims released) after about idle +
# count x interval seconds (25 s).
CLAIMS_KEEPALIVE = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}
# Commits that make read models or events visible are flushed before they return,
# whatever the defaults: the replicas' wait samples the primary's flush position.
DURABLE_COMMITS = {"synchronous_commit": "on"}


# The API process.


async def api_pool(settings: Settings) -> asyncpg.Pool:
    """The API's pool (DURABLE_COMMITS), shared by every request, the appender and the
    read-your-writes checks: up to LEDGER_API_POOL_SIZE_MAX connections (20), and a
    request waits at most LEDGER_POOL_ACQUIRE_TIMEOUT_S (5 s) for one (then 503)."""
    return await postgres.create_pool(
        settings.database_url,
        max_size=settings.api_pool_size_max,
        acquire_timeout_s=settings.pool_acquire_timeout_s,
        server_settings=DURABLE_COMMITS,
    )


# A replica's pool: a read waits at most this for one of its connections, and a
# connection at most this to open, before the read goes to the primary instead.
REPLICA_ACQUIRE_TIMEOUT_S = 0.5


async def replica_pool(settings: Settings, url: str) -> asyncpg.Pool:
    """A read replica's pool (services/http/replica_rotation.py), one per URL of
    LEDGER_READ_DATABASE_URLS: LEDGER_REPLICA_POOL_SIZE_MAX connections (8) with
    postgres.replica_sessions(); a read waits at most REPLICA_ACQUIRE_TIMEOUT_S for
    one. Opened once the replica answers its poll, and again after a failure."""
    return await postgres.create_pool(
        url,
        max_size=settings.replica_pool_size_max,
        acquire_timeout_s=REPLICA_ACQUIRE_TIMEOUT_S,
        connect_timeout_s=REPLICA_ACQUIRE_TIMEOUT_S,
        server_settings=postgres.replica_sessions(
            settings.replica_statement_timeout_ms
        ),
    )


async def replica_poll_connection(url: str) -> asyncpg.Connection:
    """A replica's poll connection (services/http/replica_polls.py), apart from its
    pool (long reads never hold the poll up); opened again after a failed poll."""
    return await asyncpg.connect(url, timeout=REPLICA_ACQUIRE_TIMEOUT_S)


async def read_your_writes_listener(settings: Settings) -> asyncpg.Connection:
    """The API's one LISTEN connection: `ledger_projected` notifications wake the
    read-your-writes waiter (services/http/projection_wait.py) and `ledger_api_keys`
    notifications empty the API key cache (services/http/api_key_cache.py). It runs
    no queries; the waiter opens a new one with this when it is lost."""
    return await asyncpg.connect(settings.database_url)


async def claims_connection(settings: Settings) -> asyncpg.Connection:
    """The API's session for its claims (services/http/session_locks.py): the
    Idempotency-Keys in flight and the business's expensive work, held as advisory
    locks that PostgreSQL releases when this connection closes. Server-side TCP
    keepalives drop it (and its claims) when its host vanishes; it has
    LEDGER_POOL_ACQUIRE_TIMEOUT_S (5 s) to open, as each of its statements has to
    answer, since every keyed request of the process waits on it."""
    return await asyncpg.connect(
        settings.database_url,
        timeout=settings.pool_acquire_timeout_s,
        server_settings=CLAIMS_KEEPALIVE,
    )


async def fold_connection(database_url: str) -> asyncpg.Connection:
    """A fold worker's connection (services/http/fold_processes.py), opened in the
    worker process for one fold (audit verify, `as_of`) and closed after it; it has
    the pools' jsonb codec."""
    return await postgres.connect(database_url)


async def readiness_broker(settings: Settings) -> AbstractRobustConnection:
    """The RabbitMQ connection /readyz checks (services/http/health.py), in the API and
    in a worker serving probes: opened at the first probe within READINESS_TIMEOUT_S
    and kept between probes (a connection per probe would fill the broker's log).
    The API's webhook routes bind the webhook queue over it too
    (services/webhooks/routes.py), opening it if no probe has."""
    return await broker.connect(settings.amqp_url, READINESS_TIMEOUT_S)


# The relay (services/outbox_relay/relay.py).


async def relay_leader_connection(settings: Settings) -> asyncpg.Connection:
    """The relay's leading PostgreSQL connection: it holds the leader's advisory lock
    (a standby waits on it, for as long as the leader lives), LISTENs for
    `ledger_events`, and in the subscribers' lane reads the events, saves the cursor
    and takes the chain-head checkpoints. Closing it hands the lead to a standby."""
    return await asyncpg.connect(settings.database_url)


async def relay_frames_connection(settings: Settings) -> asyncpg.Connection:
    """The relay's frames lane's PostgreSQL connection: it reads the events and saves
    that lane's cursor, beside the leader's connection (services/outbox_relay)."""
    return await asyncpg.connect(settings.database_url)


async def relay_broker(settings: Settings) -> AbstractRobustConnection:
    """The relay's RabbitMQ connection, for publishing with confirms (10 s to open)."""
    return await broker.connect(settings.amqp_url)


async def monitor_connection(settings: Settings) -> asyncpg.Connection:
    """The monitor process's one PostgreSQL connection (services/monitor/): it holds
    the monitor's advisory lock, reads the events and commits each batch."""
    return await asyncpg.connect(settings.database_url)


# A projector (projections/consumer.py).


async def projector_pool(settings: Settings) -> asyncpg.Pool:
    """A projector's pool (DURABLE_COMMITS): PROJECTOR_POOL_SIZE_MAX connections,
    waits unbounded (a worker has nobody to answer), planned to look rows up by index
    whatever the tables' size (postgres.INDEX_PLANS: a cached plan stays right)."""
    return await postgres.create_pool(
        settings.database_url,
        max_size=PROJECTOR_POOL_SIZE_MAX,
        index_plans=True,
        server_settings=DURABLE_COMMITS,
    )


async def partition_claims_connection(settings: Settings) -> asyncpg.Connection:
    """The session whose advisory locks are a projector's partition claims
    (projections/partition_claims.py): held for the projector's whole run."""
    return await asyncpg.connect(settings.database_url)


async def projector_broker(settings: Settings) -> AbstractRobustConnection:
    """A projector's RabbitMQ connection, consuming its partition queues (10 s to
    open)."""
    return await broker.connect(settings.amqp_url)


# The webhook worker (services/webhooks/worker.py).


async def webhooks_pool(settings: Settings) -> asyncpg.Pool:
    """The webhook worker's pool: one connection per sender (each holds an endpoint's
    advisory lock while it delivers), one for the intake, one for the retention
    sweep (services/webhooks/retention.py)."""
    return await postgres.create_pool(
        settings.database_url, max_size=settings.webhook_senders + 2
    )


async def webhooks_worker_broker(settings: Settings) -> AbstractRobustConnection:
    """The webhook worker's RabbitMQ connection, consuming its queue (10 s to open)."""
    return await broker.connect(settings.amqp_url)


# The admin commands (services/cli/), as the admin role unless said otherwise.


async def create_database(admin_dsn: str) -> bool:
    """`ledger migrate`'s first step: the DSN's database, created if missing, over a
    connection to the server's maintenance database `postgres`; True if created."""
    maintenance = postgres.with_database(admin_dsn, "postgres")
    async with _session(maintenance) as conn:
        return await postgres.create_database(conn, postgres.database_name(admin_dsn))


async def migrate(admin_dsn: str, migrations: Sequence[tuple[str, str]]) -> list[str]:
    """`ledger migrate`: the migrations not yet applied, over one connection whose
    session holds the migrators' advisory lock; returns the names applied."""
    async with _session(admin_dsn) as conn:
        return await postgres.apply_migrations(conn, migrations)


def admin_connection(
    settings: Settings,
) -> AbstractAsyncContextManager[asyncpg.Connection]:
    """One connection for an admin command: `ledger business rotate-bid`, `ledger key
    create|revoke`, and `ledger replay` (which builds new tables, then swaps them in:
    it needs the admin's rights)."""
    return _session(settings.admin_database_url)


@asynccontextmanager
async def admin_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """`ledger business create`'s pool (ADMIN_POOL_SIZE_MAX): it runs the appender,
    which takes a pool."""
    pool = await postgres.create_pool(
        settings.admin_database_url, max_size=ADMIN_POOL_SIZE_MAX
    )
    try:
        yield pool
    finally:
        await pool.close()


def audit_connection(
    settings: Settings,
) -> AbstractAsyncContextManager[asyncpg.Connection]:
    """`ledger audit verify|checkpoint`'s connection, as the application's role (the
    auditor reads what the service reads, and appends checkpoints as it does)."""
    return _session(settings.database_url)


# The probes: a fresh connection each (a kept one would hide a server that stopped
# accepting new sessions), closed at once.


def postgres_probe(
    dsn: str, timeout_s: float
) -> AbstractAsyncContextManager[asyncpg.Connection]:
    """A connection for one check (the preflight, a worker's /readyz), opened and
    closed within `timeout_s` each."""
    return _session(dsn, timeout_s)


@asynccontextmanager
async def rabbitmq_probe(url: str, timeout_s: float) -> AsyncIterator[None]:
    """The preflight's RabbitMQ check: a plain connection (nothing to reconnect) that
    opens within `timeout_s`, then closes."""
    connection: AbstractConnection = await asyncio.wait_for(
        aio_pika.connect(url, timeout=timeout_s), timeout_s
    )
    try:
        yield
    finally:
        await connection.close()


@asynccontextmanager
async def _session(
    dsn: str, timeout_s: float | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """A connection for the block's length; `timeout_s` bounds its opening and its
    closing (without it, asyncpg's defaults: 60 s to open, no bound to close)."""
    conn = await asyncpg.connect(dsn, timeout=60.0 if timeout_s is None else timeout_s)
    try:
        yield conn
    finally:
        await conn.close(timeout=timeout_s)
