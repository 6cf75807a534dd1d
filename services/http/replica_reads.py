"""Where a query reads: a replica in rotation (services/http/replica_rotation.py) or
the primary; the command's second wait; and what /readyz and /metrics say of each
replica.

A query route passes its reads as one function of a ReadTarget to on_replica(). A
replica whose pool has no free connection is skipped at once (the primary answers,
rather than the read waiting for one). On a replica, the function raises
ReplicaBehind when the replica cannot answer yet (it has not applied
X-Ledger-Min-Position, or does not hold the feed's `after`); the primary then
answers, waiting as it always did. Only what the replica's connection raises is
retried on the primary: a connection-level failure (it stopped, is shutting down, is
unreachable), which also takes the replica out of rotation; and, leaving it in, a read
cancelled by a conflict with recovery (SQLSTATE 40001 and the other 40xxx), by the
replica sessions' lock_timeout (a lock replay holds: `ledger replay`'s swap) or
statement_timeout (LEDGER_REPLICA_STATEMENT_TIMEOUT_MS), or refused for want of
resources, or one whose pool stayed busy past its acquire timeout. Anything else (a
LedgerError, the caller's own answer; a bug; the export's disk) surfaces as it would
on the primary, and is not run twice.

With no LEDGER_READ_DATABASE_URLS there is no rotation: on_replica() calls the
function once with the primary, and a command waits for nothing more.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import NamedTuple, TypeVar

import asyncpg
import msgspec
from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from services import bootstrap
from services.http.edge import POOL, SETTINGS
from services.http.replica_polls import Replica
from services.http.replica_rotation import Rotation
from shared.config import Settings
from shared.errors import PoolExhausted
from shared.setting_checks import read_urls
from shared.store.postgres import (
    CONNECTION_ERRORS,
    replica_sessions,
    with_server_settings,
)

T = TypeVar("T")
ROTATION = web.AppKey("replica_rotation", Rotation)
# Retried on the primary, the replica left in: a replay-conflict cancellation, a
# statement or lock timeout of the replica's sessions (QueryCanceledError is an
# OperatorInterventionError: this is tried first), a want of resources, and this
# process's pool of the replica busy past its acquire timeout (a capacity limit of
# this process, not a fault of the replica: taking it out would make every command
# wait three polls, and the busiest moment would flap it).
RETRIED_ON_PRIMARY = (
    asyncpg.TransactionRollbackError,
    asyncpg.QueryCanceledError,
    asyncpg.LockNotAvailableError,
    asyncpg.InsufficientResourcesError,
    PoolExhausted,
)
# Failures after which the read is retried on the primary and the replica taken out
# (asyncpg's InternalClientError: a connection the standby's shutdown cut mid-reply).
# OSError and TimeoutError are among CONNECTION_ERRORS: a read on a replica must not
# raise them for anything but its connection (the export's file writes raise
# excel_export.WorkbookWriteFailed instead).
REPLICA_LOST = (
    *CONNECTION_ERRORS,
    asyncpg.OperatorInterventionError,
    asyncpg.InternalClientError,
)


class ReplicaBehind(Exception):  # noqa: N818 (a signal, not an error to report)
    """The replica cannot answer this read yet: the primary will."""


class ReadTarget(NamedTuple):
    """Where a read runs: a pool, its URL (for a fold worker's own connection), and
    the replica's name (None: the primary)."""

    pool: asyncpg.Pool
    database_url: str
    replica: str | None = None


def primary_target(request: web.Request) -> ReadTarget:
    return ReadTarget(request.app[POOL], request.app[SETTINGS].database_url)


async def on_replica(
    request: web.Request, read: Callable[[ReadTarget], Awaitable[T]]
) -> T:
    """`read` on a replica in rotation if there is one, else (or if it cannot answer)
    on the primary."""
    rotation = request.app.get(ROTATION)
    replica = rotation.reader_replica() if rotation is not None else None
    if rotation is None or replica is None or replica.pool is None:
        return await read(primary_target(request))
    target = ReadTarget(replica.pool, replica.fold_url, replica.name)
    try:
        result = await read(target)
    except ReplicaBehind:
        pass
    except RETRIED_ON_PRIMARY:
        pass  # counted as a fallback below
    except REPLICA_LOST as error:
        rotation.failed(replica, error)
    else:
        replica.reads += 1
        return result
    replica.fallbacks += 1
    return await read(primary_target(request))


async def visible_everywhere(
    request: web.Request, projected: Awaitable[bool], timeout_s: float
) -> bool:
    """A command's read-your-writes wait, `timeout_s` in all: first `projected` (the
    projections on the primary show its events), then, with replicas, until every
    replica a reader could use has replayed them too. False if either runs out."""
    rotation = request.app.get(ROTATION)
    if rotation is None:
        return await projected
    loop = asyncio.get_running_loop()
    started = loop.time()
    if not await projected:
        return False
    return await rotation.replayed(timeout_s - (loop.time() - started))


def setup(app: web.Application, settings: Settings) -> None:
    """The rotation's lifetime (after the primary's pool opens) and its metrics;
    nothing at all without LEDGER_READ_DATABASE_URLS."""
    urls = read_urls(settings.read_database_urls)
    if not urls:
        return

    sessions = replica_sessions(settings.replica_statement_timeout_ms)

    async def rotation_context(app: web.Application) -> AsyncIterator[None]:
        replicas = [
            Replica(
                url,
                lambda url: bootstrap.replica_pool(settings, url),
                bootstrap.replica_poll_connection,
                with_server_settings(url, sessions),
            )
            for url in urls
        ]
        rotation = Rotation(
            app[POOL],
            replicas,
            poll_s=settings.replica_poll_ms / 1000,
            lag_max_s=settings.replica_lag_max_ms / 1000,
        )
        await rotation.start()
        app[ROTATION] = rotation
        yield
        await rotation.stop()

    app.cleanup_ctx.append(rotation_context)


class ReplicaHealth(msgspec.Struct, frozen=True, kw_only=True):
    """One replica in /readyz: its rotation state (as the primary's table says),
    whether this process would read from it now, how many bytes of WAL its replay is
    behind the primary's last sample, whether replay is paused, and its poll error."""

    name: str
    state: str
    in_rotation: bool
    lag_bytes: int | None
    paused: bool
    error: str | None


def replica_health(app: web.Application) -> list[ReplicaHealth]:
    rotation = app.get(ROTATION)
    if rotation is None:
        return []
    return [
        ReplicaHealth(
            name=replica.name,
            state=replica.state,
            in_rotation=rotation.routable(replica),
            lag_bytes=lag_bytes(rotation, replica),
            paused=replica.paused,
            error=replica.poll_error or replica.failure,
        )
        for replica in rotation.replicas
    ]


class ReplicaCollector(Collector):
    """/metrics gauges and counters of each replica, read from the rotation at each
    scrape (no query)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        lag = GaugeMetricFamily(
            "ledger_replica_lag_bytes",
            "Bytes of WAL the replica's replay is behind the primary (last poll)",
            labels=["replica"],
        )
        rotation_gauge = GaugeMetricFamily(
            "ledger_replica_in_rotation",
            "1 if the replica is in the query routes' rotation, else 0",
            labels=["replica"],
        )
        reads = CounterMetricFamily(
            "ledger_replica_reads",
            "Queries this process answered from the replica",
            labels=["replica"],
        )
        fallbacks = CounterMetricFamily(
            "ledger_replica_fallbacks",
            "Queries sent to the replica and answered by the primary instead",
            labels=["replica"],
        )
        bypasses = CounterMetricFamily(
            "ledger_replica_bypasses",
            "Queries sent straight to the primary: no replica in rotation, none"
            " with a young enough view and poll, or every replica's pool busy",
        )
        rotation = self._app.get(ROTATION)
        bypasses.add_metric([], rotation.bypasses if rotation is not None else 0)
        for replica in rotation.replicas if rotation is not None else []:
            behind = lag_bytes(rotation, replica) if rotation is not None else None
            if behind is not None:
                lag.add_metric([replica.name], behind)
            in_rotation = rotation is not None and rotation.routable(replica)
            rotation_gauge.add_metric([replica.name], int(in_rotation))
            reads.add_metric([replica.name], replica.reads)
            fallbacks.add_metric([replica.name], replica.fallbacks)
        yield from (lag, rotation_gauge, reads, fallbacks, bypasses)


def lag_bytes(rotation: Rotation, replica: Replica) -> int | None:
    """How far the replica's replay is behind the primary's last sampled LSN."""
    if rotation.primary_lsn is None or replica.replayed is None:
        return None
    return max(0, rotation.primary_lsn - replica.replayed)
