"""GET /api/v3/audit/verify: `ledger audit verify` for the caller's business, as JSON
(200 with `ok: false` and the differences when there are any: the report is the
answer, not an error)."""

from __future__ import annotations

from aiohttp import web

from services.audit.verify import verify
from shared.config import settings_keyring
from shared.http_edge import POOL, SETTINGS, business_of, json_response

routes = web.RouteTableDef()


@routes.get("/api/v3/audit/verify")
async def audit_verify(request: web.Request) -> web.Response:
    keys = settings_keyring(request.app[SETTINGS])
    async with request.app[POOL].acquire() as conn:
        report = await verify(conn, keys, business_of(request).business_id)
    return json_response(report)


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
