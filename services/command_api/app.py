"""The command API: routes that append events. The HTTP app's setup
(services/http/app.py) adds them, with the appender's lifetime, to the API process."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from services.command_api.appender import Appender
from services.command_api.group_window import Window
from services.command_api.idempotency import IN_FLIGHT
from services.command_api.routes import APPENDER, routes
from services.command_api.spreadsheets import import_routes
from services.command_api.spreadsheets.import_parsing import parse_pool_context
from services.http.edge import CLOCK, POOL, SETTINGS
from services.http.metrics import METRICS
from shared.key_settings import settings_master_keys


def setup(app: web.Application) -> None:
    """Add the command routes and the appender's lifetime to the app."""
    app[IN_FLIGHT] = set()
    app.router.add_routes(import_routes.routes)
    app.router.add_routes(routes)

    async def appender_context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        metrics = app.get(METRICS)
        appender = Appender(
            app[POOL],
            settings.hmac_key.encode(),
            settings.batch_size_max,
            on_appended=metrics.count_appended if metrics is not None else None,
            clock=app[CLOCK],
            window=Window(settings.batch_window_s, settings.batch_window_from),
            master=settings_master_keys(settings).current,
        )
        appender.start()
        app[APPENDER] = appender
        yield
        await appender.stop()

    app.cleanup_ctx.append(appender_context)
    app.cleanup_ctx.append(parse_pool_context)
