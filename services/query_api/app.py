"""The query API: routes that read the read models (and, for history and the event
feed, the event store). The HTTP app's setup (services/http/app.py) adds them to the
API process."""

from __future__ import annotations

from aiohttp import web

from services.query_api import aging, feed, history, import_status, monitors
from services.query_api.routes import routes


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
    app.router.add_routes(aging.routes)
    app.router.add_routes(history.routes)
    app.router.add_routes(feed.routes)
    app.router.add_routes(import_status.routes)
    app.router.add_routes(monitors.routes)
