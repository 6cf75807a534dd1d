"""Where a query reads: a replica in rotation (services/http/replica_rotation.py) or
the primary; the command's second wait; and what /readyz and /metrics say of each
replica.

A query route passes its reads as one function of a ReadTarget to on_replica(). On a
replica, the function raises ReplicaBehind when the replica cannot answer yet (it has
not applied X-Ledger-Min-Position, or does not hold the feed's `after`); the primary
then answers, waiting as it always did. A connection-level failure on the replica (it
stopped, is shutting down, is unreachable, its pool stayed busy) is retried on the
primary too, and takes the replica out of rotation; so is a read cancelled by a
conflict with recovery (SQLSTATE 40001 and the other 40xxx) or one whose replica pool
stayed busy past its acquire timeout, which leave the replica in, and so is any other
failure but a LedgerError (a 404 or 422 is the caller's answer). The caller sees none
of these.

With no LEDGER_READ_DATABASE_URLS there is no rotation: on_replica() calls the
function once with the primary, and a command waits for nothing more.
"""

from __future__ import annotations

import asyncio
import logging
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
from services.http.replica_rotation import Rotation, lag_bytes
from shared.config import Settings
from shared.errors import LedgerError, PoolExhausted
from shared.setting_checks import read_urls
from shared.store.postgres import CONNECTION_ERRORS

T = TypeVar("T")
log = logging.getLogger(__name__)
ROTATION = web.AppKey("replica_rotation", Rotation)
# Failures after which the read is retried on the primary and the replica taken out
# (asyncpg's InternalClientError: a connection the standby's shutdown cut mid-reply).
REPLICA_LOST = (
    *CONNECTION_ERRORS,
    asyncpg.OperatorInterventionError,
    asyncpg.InternalClientError,
)
# Retried on the primary, the replica left in: a replay-conflict cancellation, and
# this process's pool of the replica busy past its acquire timeout (a capacity limit
# of this process, not a fault of the replica: taking it out would make every command
# wait three polls, and the busiest moment would flap it).
RETRIED_ON_PRIMARY = (asyncpg.TransactionRollbackError, PoolExhausted)


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
    try:
        result = await read(ReadTarget(replica.pool, replica.url, replica.name))
    except ReplicaBehind:
        pass
    except RETRIED_ON_PRIMARY:
        pass
    except REPLICA_LOST as error:
        rotation.failed(replica, error)
    except LedgerError:
        raise  # the caller's own answer (404, 422): the primary would say the same
    except Exception as error:  # anything else the replica did: the primary answers
        log.warning(
            "read on replica %s failed; on the primary: %r", replica.name, error
        )
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

    async def rotation_context(app: web.Application) -> AsyncIterator[None]:
        replicas = [
            Replica(url, lambda url: bootstrap.replica_pool(settings, url))
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
        rotation = self._app.get(ROTATION)
        for replica in rotation.replicas if rotation is not None else []:
            behind = lag_bytes(rotation, replica) if rotation is not None else None
            if behind is not None:
                lag.add_metric([replica.name], behind)
            in_rotation = rotation is not None and rotation.routable(replica)
            rotation_gauge.add_metric([replica.name], int(in_rotation))
            reads.add_metric([replica.name], replica.reads)
            fallbacks.add_metric([replica.name], replica.fallbacks)
        yield from (lag, rotation_gauge, reads, fallbacks)
