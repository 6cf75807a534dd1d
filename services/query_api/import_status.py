"""GET /api/v3/clients/imports/{import_id}: how far an import has reached the read
models.

A query, so it is served here with the other reads. An import (the command API's
POST /api/v3/clients/import) commits all its rows in one transaction and records
itself in client_imports; its 202 answer links here. The rows are committed at once,
and the read models show them as the projections apply them: the status reads the
projections' progress (projections/progress.py) until every projection has applied
the import's last event, and is then `done`.
"""

from __future__ import annotations

import re

import asyncpg
import msgspec
from aiohttp import web

from projections import progress
from services.http.edge import POOL, business_of, json_response

routes = web.RouteTableDef()

# The import's clients the read models show: its client.created events (one
# transaction, read through events_by_transaction) at or below the position every
# projection has applied. Cheap at 100,000 rows, unlike looking up each client stream.
_CREATED_UP_TO = """
SELECT count(*) FROM events
WHERE transaction_id = $1::text::xid8 AND type = 'client.created' AND position <= $2
"""
# The ids imports get (str(uuid.uuid4())). Anything else from the path is refused
# before it reaches PostgreSQL, where a NUL byte in a text parameter is an error (a
# 500), not a miss.
_IMPORT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class ImportStatus(msgspec.Struct, kw_only=True, frozen=True):
    import_id: str
    status: str
    rows_committed: int
    rows_visible: int


@routes.get("/api/v3/clients/imports/{import_id}")
async def import_status(request: web.Request) -> web.Response:
    business = business_of(request)
    found = await status(
        request.app[POOL], business.business_id, request.match_info["import_id"]
    )
    if found is None:
        raise web.HTTPNotFound(reason="Import not found")
    return json_response(found)


async def status(
    pool: asyncpg.Pool, business_id: int, import_id: str
) -> ImportStatus | None:
    """Rows committed, and rows the read models show, until the import's last event
    is applied by every projection (then it is done); None for an unknown id."""
    if not _IMPORT_ID.fullmatch(import_id):
        return None
    row = await pool.fetchrow(
        "SELECT imported, transaction_id::text AS transaction_id, last_stream_id,"
        " last_version"
        " FROM client_imports WHERE import_id = $1 AND business_id = $2",
        import_id,
        business_id,
    )
    if row is None:
        return None
    done = await progress.stream_applied(
        pool, row["last_stream_id"], row["last_version"]
    )
    visible = row["imported"] if done else await _visible(pool, row["transaction_id"])
    return ImportStatus(
        import_id=import_id,
        status="done" if done else "committed",
        rows_committed=row["imported"],
        rows_visible=min(visible, row["imported"]),
    )


async def _visible(pool: asyncpg.Pool, transaction_id: str) -> int:
    reached = await progress.position_applied(pool)
    if reached is None:  # some projection has applied nothing yet
        return 0
    visible: int = await pool.fetchval(_CREATED_UP_TO, transaction_id, reached)
    return visible
