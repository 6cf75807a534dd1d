"""GET /api/v3/monitors and /api/v3/monitors/{id}: the business's balance monitors,
from the read model (rm_monitors, the balances projection)."""

from __future__ import annotations

from aiohttp import web
from asyncpg import Record

from services.http.edge import POOL, business_of
from services.http.replica_reads import primary_target
from services.query_api.read_positions import answer, min_position
from shared import uuids
from shared.errors import NotFound
from shared.money import to_number
from shared.response_bodies import MonitorBody, MonitorsBody, timestamp

routes = web.RouteTableDef()

_COLUMNS = """
SELECT monitor_id, scope, client_id, category_id, figure, condition,
       threshold_minor, created_at
FROM rm_monitors
"""


def _body(row: Record) -> MonitorBody:
    return MonitorBody(
        id=row["monitor_id"],
        scope=row["scope"],
        client_id=row["client_id"],
        category_id=row["category_id"],
        figure=row["figure"],
        condition=row["condition"],
        amount=to_number(row["threshold_minor"]),
        created_at=timestamp(row["created_at"]),
    )


@routes.get("/api/v3/monitors")
async def list_monitors(request: web.Request) -> web.Response:
    """Oldest first. A business has at most LEDGER_MONITORS_PER_BUSINESS_MAX."""
    business = business_of(request)
    await min_position(request, primary_target(request))
    rows = await request.app[POOL].fetch(
        _COLUMNS + "WHERE business_id = $1 ORDER BY created_at, monitor_id",
        business.business_id,
    )
    return answer(request, MonitorsBody(monitors=[_body(row) for row in rows]))


@routes.get("/api/v3/monitors/{id:" + uuids.PATTERN + "}")
async def get_monitor(request: web.Request) -> web.Response:
    business = business_of(request)
    monitor_id = request.match_info["id"]
    await min_position(request, primary_target(request))
    row = await request.app[POOL].fetchrow(
        _COLUMNS + "WHERE business_id = $1 AND monitor_id = $2",
        business.business_id,
        monitor_id,
    )
    if row is None:
        raise NotFound(f"Monitor {monitor_id} not found")
    return answer(request, _body(row))
