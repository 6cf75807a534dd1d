"""Prometheus metrics of the API process, served at /metrics (public, no key).

Counted in the process: requests per route and status, their latency, the events the
API appended (commands and imports) and the rows imported. Read from the database,
because they belong to other processes: the relay's backlog and each projection's lag
and parked events (projections/progress.py), so that one scrape of the API shows the
whole pipeline even under `ledger run`, where the workers serve no port. The workers'
own counters are in shared/worker/metrics.py.

/metrics needs no key, and counting a backlog of 300,000 events takes about a second,
so the database figures are read at most once every `metrics_backlog_interval_s`
(LEDGER_METRICS_BACKLOG_INTERVAL_S, 5 s): scrapes in between, however many, show the
last figures and cost the database nothing. `ledger_metrics_backlog_reads` counts
the reads.

Each app has a registry of its own (not the process-wide default), so two apps in one
process (tests) never mix their counts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from projections import progress
from services.http.edge import POOL, SETTINGS, Handler
from services.http.replica_reads import ReplicaCollector
from services.http.request_log import route_of, timed
from shared.config import Settings
from shared.setting_checks import read_urls

log = logging.getLogger(__name__)


_Labelled = Counter | Gauge | Histogram


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._labelled: dict[tuple[object, ...], Any] = {}
        registry = self.registry
        self.requests = Counter(
            "ledger_http_requests",
            "HTTP requests answered, by method, route pattern and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "ledger_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route pattern",
            ["method", "route"],
            registry=registry,
        )
        self.events_appended = Counter(
            "ledger_events_appended",
            "Events this process appended to the event store, by type",
            ["type"],
            registry=registry,
        )
        self.import_rows = Counter(
            "ledger_import_rows",
            "Spreadsheet rows committed by customer imports",
            registry=registry,
        )
        self.relay_backlog_events = Gauge(
            "ledger_relay_backlog_events",
            "Committed events the relay has not yet published (read from the database)",
            registry=registry,
        )
        self.relay_backlog_seconds = Gauge(
            "ledger_relay_backlog_seconds",
            "Age of the oldest event not yet published, 0 if none (from the database)",
            registry=registry,
        )
        self._projection_gauges(registry)
        self.backlog_reads = Counter(
            "ledger_metrics_backlog_reads",
            "Times /metrics read the backlog and lag gauges from the database",
            registry=registry,
        )
        self._backlog_lock = asyncio.Lock()
        self._backlog_read_at: float | None = None  # time.monotonic() of the last

    def _projection_gauges(self, registry: CollectorRegistry) -> None:
        self.projection_lag_events = Gauge(
            "ledger_projection_lag_events",
            "Events past the projection's checkpoint (read from the database)",
            ["projection"],
            registry=registry,
        )
        self.projection_lag_seconds = Gauge(
            "ledger_projection_lag_seconds",
            "Age of the oldest event the projection has not applied (from the db)",
            ["projection"],
            registry=registry,
        )
        self.partition_lag_positions = Gauge(
            "ledger_projection_partition_lag_positions",
            "Positions between a partition's checkpoint and the store's head",
            ["projection", "partition"],
            registry=registry,
        )
        self.partition_lag_seconds = Gauge(
            "ledger_projection_partition_lag_seconds",
            "Age of the first event past a partition's checkpoint, 0 if none",
            ["projection", "partition"],
            registry=registry,
        )
        self.projection_parked = Gauge(
            "ledger_projection_parked_events",
            "Events the projection parked after failing to apply them",
            ["projection"],
            registry=registry,
        )

    def add_replicas(self, app: web.Application, settings: Settings) -> None:
        """Each read replica's lag and rotation (services/http/replica_reads.py),
        read from the process's rotation at each scrape; none without replicas."""
        if read_urls(settings.read_database_urls):
            self.registry.register(ReplicaCollector(app))

    def count_appended(self, event_types: Iterable[str]) -> None:
        for event_type in event_types:
            self._children(self.events_appended, event_type).inc()

    def requests_of(self, method: str, route: str, status: int) -> Counter:
        child: Counter = self._children(self.requests, method, route, str(status))
        return child

    def seconds_of(self, method: str, route: str) -> Histogram:
        child: Histogram = self._children(self.request_seconds, method, route)
        return child

    def _children(self, metric: _Labelled, *labels: str) -> Any:
        """metric.labels(*labels), kept: prometheus_client's labels() validates and
        locks on every call (about 1.5% of the API's CPU per request). The label
        values are bounded (routes, methods, statuses, event types)."""
        key = (id(metric), *labels)
        child = self._labelled.get(key)
        if child is None:
            child = self._labelled[key] = metric.labels(*labels)
        return child

    async def refresh_backlog(self, pool: asyncpg.Pool, interval_s: float) -> None:
        """Read the database gauges unless they were read less than `interval_s` ago.
        One scrape at a time decides: scrapes that arrive together wait for one read
        instead of each starting its own."""
        async with self._backlog_lock:
            now = time.monotonic()
            last = self._backlog_read_at
            if last is not None and now - last < interval_s:
                return
            self._backlog_read_at = now  # a failed read waits its turn too
            self.backlog_reads.inc()
            await self.read_backlog(pool)

    async def read_backlog(self, pool: asyncpg.Pool) -> None:
        relay = await progress.relay_backlog(pool)
        self.relay_backlog_events.set(relay.events)
        self.relay_backlog_seconds.set(relay.seconds)
        lags = await progress.projection_lags(pool)
        for name, lag in lags.items():
            self.projection_lag_events.labels(projection=name).set(lag.events)
            self.projection_lag_seconds.labels(projection=name).set(lag.seconds)
        for behind in await progress.partition_lags(pool):
            labels = {
                "projection": behind.projection,
                "partition": str(behind.partition),
            }
            self.partition_lag_positions.labels(**labels).set(behind.positions)
            self.partition_lag_seconds.labels(**labels).set(behind.seconds)
        parked = await progress.parked_events(pool)
        for name, count in parked.items():
            self.projection_parked.labels(projection=name).set(count)


METRICS = web.AppKey("metrics", ApiMetrics)
# Methods counted by name. Any other the HTTP parser accepts (WebDAV's, PURGE; it
# refuses invented ones) counts as OTHER: the label sets stay few, whatever is sent.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@web.middleware
async def metrics_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Count and time every answered request under its route's pattern."""

    def count(status: int, duration_s: float) -> None:
        metrics = request.app[METRICS]
        route = route_of(request)
        method = request.method if request.method in METHODS else "OTHER"
        metrics.requests_of(method, route, status).inc()
        metrics.seconds_of(method, route).observe(duration_s)

    return await timed(request, handler, count)


async def metrics_endpoint(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    try:
        interval_s = request.app[SETTINGS].metrics_backlog_interval_s
        await metrics.refresh_backlog(request.app[POOL], interval_s)
    except Exception as error:  # the counters still answer; the gauges keep old values
        log.warning("/metrics: backlog not read: %r", error)
    return web.Response(
        body=generate_latest(metrics.registry),
        headers={"Content-Type": CONTENT_TYPE_LATEST},
    )


def setup(app: web.Application) -> ApiMetrics:
    metrics = ApiMetrics()
    app[METRICS] = metrics
    app.router.add_get("/metrics", metrics_endpoint)
    return metrics
