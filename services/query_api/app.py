"""The query API: routes that read the read models; the CLI wires it into the app."""

from __future__ import annotations

from aiohttp import web

from services.query_api.routes import routes


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
