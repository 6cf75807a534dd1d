"""`ledger api`: one aiohttp app serving the command and query APIs on one port.

create_app is the API process's wiring (the CLI's `ledger api` calls serve): it opens
the pool and the read-your-writes LISTEN connection that services/bootstrap.py makes,
puts the settings, the pool and the waiter under the app's keys, and adds each
service's routes and lifetimes (their setup functions).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

from aiohttp import web

from services import bootstrap
from services.api_docs import routes as api_docs
from services.audit import routes as audit_api
from services.command_api import app as command_api
from services.http import health, metrics, replica_reads, request_log
from services.http.body_deadline import body_deadline_middleware
from services.http.edge import CLOCK, POOL, SETTINGS, auth_middleware, error_middleware
from services.http.fair_use import FAIR_USE, FairUse
from services.http.fold_processes import fold_processes_context
from services.http.listener import BoundedSite, set_server_header
from services.http.projection_wait import WAITER, ProjectionWaiter
from services.http.session_locks import SESSION_LOCKS, SessionLocks
from services.http.shared_buckets import prune_buckets
from services.query_api import app as query_api
from services.webhooks import routes as webhooks_api
from shared.clock import Clock, clock_from
from shared.config import Settings
from shared.worker import event_loop


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    """The app; `clock` is for in-process tests (default: the settings' clock)."""
    app = web.Application(
        middlewares=[
            request_log.request_log_middleware,
            metrics.metrics_middleware,
            error_middleware,
            body_deadline_middleware,
            auth_middleware,
        ],
        client_max_size=settings.body_size_max,
    )
    app[SETTINGS] = settings
    app[FAIR_USE] = FairUse(settings)
    app[CLOCK] = clock or clock_from(settings.test_clock_start)

    async def database(app: web.Application) -> AsyncIterator[None]:
        app[POOL] = await bootstrap.api_pool(settings)
        # The process's claims session (idempotency keys, expensive work), opened at
        # the first claim; closing it releases whatever is still held.
        app[SESSION_LOCKS] = SessionLocks(
            lambda: bootstrap.claims_connection(settings),
            settings.pool_acquire_timeout_s,
        )
        app[FAIR_USE].connect(app[POOL], app[SESSION_LOCKS])
        pruning = asyncio.create_task(prune_buckets(app[POOL]))
        listener = await bootstrap.read_your_writes_listener(settings)
        # A lost LISTEN connection is replaced by a new one from the same opener
        # (until then the API key cache is off: services/http/api_key_cache.py).
        waiter = ProjectionWaiter(
            app[POOL],
            listener,
            reopen=lambda: bootstrap.read_your_writes_listener(settings),
        )
        await waiter.start()
        app[WAITER] = waiter
        yield
        await waiter.stop()
        await listener.close()
        pruning.cancel()
        await app[SESSION_LOCKS].close()
        await app[POOL].close()

    app.cleanup_ctx.append(database)
    replica_reads.setup(app, settings)  # nothing without LEDGER_READ_DATABASE_URLS
    app.on_response_prepare.append(set_server_header)
    app.cleanup_ctx.append(fold_processes_context(settings))
    health.setup(app)
    metrics.setup(app).add_replicas(app, settings)
    request_log.setup(app)
    command_api.setup(app)
    query_api.setup(app)
    audit_api.setup(app)
    webhooks_api.setup(app)
    api_docs.setup(app)
    return app


# How long a stop waits for the requests in flight to finish.
SHUTDOWN_TIMEOUT_S = 10.0


async def start_server(settings: Settings, port: int) -> web.AppRunner:
    """The app listening on `port`, with the connection bound (shared/http_listener)."""
    runner = web.AppRunner(
        create_app(settings), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S
    )
    await runner.setup()
    site = BoundedSite(
        runner,
        settings.http_host,
        port,
        settings.http_connections_max,
        # Several `ledger api` processes share the port (services/cli/api_processes.py).
        reuse_port=settings.api_processes > 1,
    )
    await site.start()
    return runner


async def _serve_until_stopped(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = await start_server(settings, settings.http_port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()  # stop listening, finish requests in flight, close


def serve(settings: Settings) -> None:
    """`ledger api`: serve until SIGINT or SIGTERM (web.run_app cannot take the
    bounded site, so this is its loop, with the same graceful stop)."""
    event_loop.run(_serve_until_stopped(settings), settings.event_loop)
