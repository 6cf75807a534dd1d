"""GET /api/v3/openapi.json, and /docs: a page that renders it, offline.

The page is RapiDoc 9.3.8 (MIT; assets/rapidoc-LICENSE.txt), vendored under assets/
and served from here, so the page needs nothing but this service: it loads no fonts
(`load-fonts="false"`) and refers only to same-origin URLs. All three routes are
public (services/http/edge.py).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from services.api_docs import openapi

ASSETS = Path(__file__).with_name("assets")
# The files /docs/{asset} serves, and their content types: nothing else of assets/.
SERVED = {
    "rapidoc-min.js": "text/javascript",
    "rapidoc-min.js.LICENSE.txt": "text/plain",
    "rapidoc-LICENSE.txt": "text/plain",
}
routes = web.RouteTableDef()


@routes.get("/api/v3/openapi.json")
async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(body=openapi.rendered(), content_type="application/json")


@routes.get("/docs")
async def docs_page(request: web.Request) -> web.Response:
    return web.Response(
        body=(ASSETS / "docs.html").read_bytes(), content_type="text/html"
    )


@routes.get("/docs/{asset}")
async def docs_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["asset"]
    if name not in SERVED:
        raise web.HTTPNotFound(reason="Not Found")
    return web.FileResponse(
        ASSETS / name, headers={"Content-Type": f"{SERVED[name]}; charset=utf-8"}
    )


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
