"""`ledger api`: one aiohttp app serving the command and query APIs on one port."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from services.api_docs import routes as api_docs
from services.audit import routes as audit_api
from services.command_api import app as command_api
from services.query_api import app as query_api
from shared import health, metrics, request_log
from shared.config import PROJECTIONS, Settings
from shared.fair_use import FAIR_USE, FairUse
from shared.fold_processes import fold_processes_context
from shared.http_edge import POOL, SETTINGS, auth_middleware, error_middleware
from shared.postgres import create_pool
from shared.projection_wait import WAITER, ProjectionWaiter


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[
            request_log.request_log_middleware,
            metrics.metrics_middleware,
            error_middleware,
            auth_middleware,
        ],
        client_max_size=settings.body_size_max,
    )
    app[SETTINGS] = settings
    app[FAIR_USE] = FairUse(settings)

    async def database(app: web.Application) -> AsyncIterator[None]:
        app[POOL] = await create_pool(
            settings.database_url,
            max_size=settings.api_pool_size_max,
            acquire_timeout_s=settings.pool_acquire_timeout_s,
        )
        waiter = ProjectionWaiter(app[POOL], settings.database_url, PROJECTIONS)
        await waiter.start()
        app[WAITER] = waiter
        yield
        await waiter.stop()
        await app[POOL].close()

    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(fold_processes_context(settings))
    health.setup(app)
    metrics.setup(app)
    request_log.setup(app)
    command_api.setup(app)
    query_api.setup(app)
    audit_api.setup(app)
    api_docs.setup(app)
    return app


def serve(settings: Settings) -> None:
    web.run_app(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        print=None,
        access_log=None,
        shutdown_timeout=10,
    )
