"""Prometheus metrics of the workers (the relay, a projector), counted in the process.

Served at /metrics beside /healthz and /readyz on LEDGER_HEALTH_PORT
(services/cli/worker_health.py); under `ledger run` no worker serves a port, and the
API's /metrics (services/http/metrics.py) shows the relay's backlog and each
projection's lag, read from the database. One registry per process: a worker process
runs one worker.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram

log = logging.getLogger("ledger.worker")
REGISTRY = CollectorRegistry()

RELAY_PUBLISHED = Counter(
    "ledger_relay_published_events",
    "Events the relay published and RabbitMQ confirmed",
    registry=REGISTRY,
)
RELAY_PUBLISH_SECONDS = Histogram(
    "ledger_relay_publish_duration_seconds",
    "Time to publish one batch and receive every publisher confirm",
    registry=REGISTRY,
)
PROJECTION_APPLIED = Counter(
    "ledger_projection_applied_events",
    "Event deliveries a projector committed and acked (duplicates included)",
    ["projection"],
    registry=REGISTRY,
)
PROJECTION_BATCH_SECONDS = Histogram(
    "ledger_projection_batch_duration_seconds",
    "Time to apply one batch of deliveries and commit it",
    ["projection"],
    registry=REGISTRY,
)
PROJECTION_PARKED = Counter(
    "ledger_projection_parked",
    "Events a projector parked after they kept failing",
    ["projection"],
    registry=REGISTRY,
)


def relay_published(count: int, duration_s: float, position: int) -> None:
    RELAY_PUBLISHED.inc(count)
    RELAY_PUBLISH_SECONDS.observe(duration_s)
    _log_batch(
        "relay.published",
        duration_s,
        "relay published %d events",
        count,
        events=count,
        position_last=position,
    )


def projection_applied(projection: str, count: int, duration_s: float) -> None:
    PROJECTION_APPLIED.labels(projection=projection).inc(count)
    PROJECTION_BATCH_SECONDS.labels(projection=projection).observe(duration_s)
    _log_batch(
        "projection.applied",
        duration_s,
        "%s applied %d events",
        projection,
        count,
        projection=projection,
        events=count,
    )


def _log_batch(
    event: str, duration_s: float, message: str, *args: object, **fields: object
) -> None:
    """One log line per batch: its message, `fields`, then its duration."""
    log.info(
        message,
        *args,
        extra={"event": event, **fields, "duration_ms": round(duration_s * 1000, 3)},
    )
