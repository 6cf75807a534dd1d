"""/healthz and /readyz for a worker (the relay, a projector), for container probes.

A worker serves no API, so a container orchestrator has nothing to ask whether it is
alive. With LEDGER_HEALTH_PORT set (compose and the Kubernetes manifests set it;
`ledger run` never does, its children would share the port), `ledger relay` and
`ledger projector` answer on that port:

- /healthz: the process's event loop answers (a wedged loop fails the probe);
- /readyz: the worker can reach what it works with: a fresh PostgreSQL connection as
  its own role answers `SELECT 1`, and its RabbitMQ connection is open. Projection
  lag is the API's /readyz's business: a worker catching up is still a good worker;
- /metrics: the worker's Prometheus counters (shared/worker/metrics.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services import bootstrap
from services.bootstrap import READINESS_TIMEOUT_S
from services.http.edge import SETTINGS, json_response
from services.http.health import broker_check, keep_broker
from shared.config import Settings
from shared.worker import metrics as worker_metrics

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    checks = {
        "postgres": await _postgres_check(request.app[SETTINGS].database_url),
        "rabbitmq": await broker_check(request.app),
    }
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return json_response(body, status=200 if ready else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """The worker's counters (shared/worker/metrics.py), in Prometheus' text format."""
    return web.Response(
        body=generate_latest(worker_metrics.REGISTRY),
        headers={"Content-Type": CONTENT_TYPE_LATEST},
    )


async def _postgres_check(dsn: str) -> str:
    # A connection of its own each time (probes come every few seconds): a pool
    # would only hide a server that stopped accepting new sessions.
    try:
        async with bootstrap.postgres_probe(dsn, READINESS_TIMEOUT_S) as conn:
            await conn.fetchval("SELECT 1", timeout=READINESS_TIMEOUT_S)
    except Exception as error:  # any failure means not ready
        return f"failed: {type(error).__name__}"
    return "ok"


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    keep_broker(app)
    app.router.add_routes(routes)
    return app


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[None]:
    """Answer the probes on settings.health_port while the block runs (nothing when
    it is 0)."""
    if settings.health_port == 0:
        yield
        return
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.http_host, settings.health_port)
        await site.start()
        yield
    finally:
        await runner.cleanup()
