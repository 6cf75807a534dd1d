"""/healthz (the process serves) and /readyz (PostgreSQL, RabbitMQ, projection lag)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web

from projections import progress
from services import bootstrap
from services.http.edge import POOL, SETTINGS, json_response
from services.http.replica_reads import ReplicaHealth, replica_health

BROKER = web.AppKey("health_broker", list[AbstractRobustConnection])

routes = web.RouteTableDef()


class HealthBody(msgspec.Struct, frozen=True):
    status: str


class ReadyBody(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    status: str
    checks: dict[str, str]
    lag_s: float
    # Events a projection could not apply (see projection_parked): worth an alert,
    # but the service still serves, so they do not fail readiness.
    parked_events: int
    # Each read replica (LEDGER_READ_DATABASE_URLS): one out of rotation does not fail
    # readiness (the primary serves its reads). Omitted without replicas.
    replicas: list[ReplicaHealth] | None = None


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response(HealthBody(status="ok"))


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    lag_s = 0.0
    parked = 0
    try:
        # The lag of the projection furthest behind: the age of the oldest event it
        # has not applied (/metrics shows each projection's).
        lag_s = await progress.lag_max_seconds(request.app[POOL])
        parked = sum((await progress.parked_events(request.app[POOL])).values())
        checks["postgres"] = "ok"
    except Exception as error:  # any failure means not ready
        checks["postgres"] = f"failed: {type(error).__name__}"
    checks["rabbitmq"] = await broker_check(request.app)
    bound = request.app[SETTINGS].readiness_lag_max_s
    checks["projection_lag"] = "ok" if lag_s <= bound else f"{lag_s:.1f} s > {bound} s"
    ready = all(value == "ok" for value in checks.values())
    body = ReadyBody(
        status="ready" if ready else "not ready",
        checks=checks,
        lag_s=lag_s,
        parked_events=parked,
        replicas=replica_health(request.app) or None,
    )
    return json_response(body, status=200 if ready else 503)


async def broker_check(app: web.Application) -> str:
    """Whether the app's RabbitMQ connection is open ("ok"). It is opened at the first
    probe and kept between probes: a connection per probe would fill the broker's log.
    The API's /readyz and a worker's (services/cli/worker_health.py) both ask it."""
    holder = app[BROKER]
    if holder and not holder[0].is_closed:
        return "ok"
    try:
        connection = await bootstrap.readiness_broker(app[SETTINGS])
    except Exception as error:  # any failure means not ready
        return f"failed: {type(error).__name__}"
    holder[:] = [connection]
    return "ok"


def setup(app: web.Application) -> None:
    keep_broker(app)
    app.router.add_routes(routes)


def keep_broker(app: web.Application) -> None:
    """Give the app the connection broker_check keeps, closed with the app."""
    app[BROKER] = []

    async def broker_context(app: web.Application) -> AsyncIterator[None]:
        yield
        for connection in app[BROKER]:
            await connection.close()

    app.cleanup_ctx.append(broker_context)
