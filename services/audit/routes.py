"""GET /api/v3/audit/verify: `ledger audit verify` for the caller's business, as JSON
(200 with `ok: false` and the differences when there are any: the report is the
answer, not an error)."""

from __future__ import annotations

from aiohttp import web

from services.audit.verify import verify
from services.http.edge import SETTINGS, business_of, json_response
from services.http.fair_use import fair_use_of
from services.http.fold_processes import in_fold_process
from shared.key_settings import settings_keyring

routes = web.RouteTableDef()


@routes.get("/api/v3/audit/verify")
async def audit_verify(request: web.Request) -> web.Response:
    keys = settings_keyring(request.app[SETTINGS])
    business_id = business_of(request).business_id
    async with fair_use_of(request).expensive_work(business_id):
        # In a worker process: the walk is CPU-bound (services/http/fold_processes.py).
        report = await in_fold_process(request, verify, keys, business_id)
    return json_response(report)


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
