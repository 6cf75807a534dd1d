"""The monitor process's state in PostgreSQL (migration 0018): loaded at start, and
each batch's changes written with its cursor, in one transaction."""

from __future__ import annotations

import asyncpg
import msgspec

from shared import events as e
from shared.monitors import Figures, Watch

_definition = msgspec.json.Decoder(e.MonitorCreated)
_FIGURES = """
INSERT INTO monitor_figures (client_id, business_id, category_id, balance_minor,
                             deposit_minor, deleted)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],
                     $5::bigint[], $6::boolean[])
ON CONFLICT (client_id) DO UPDATE
SET category_id = excluded.category_id, balance_minor = excluded.balance_minor,
    deposit_minor = excluded.deposit_minor, deleted = excluded.deleted
"""


async def load(conn: asyncpg.Connection) -> Watch:
    """The state as of the saved cursor."""
    watch = Watch()
    for row in await conn.fetch(
        "SELECT business_id, definition::text AS definition, deleted_position"
        " FROM monitor_watch"
    ):
        watch.followed.add(row["business_id"])
        if row["deleted_position"] is None:
            monitor = _definition.decode(row["definition"])
            by_id = watch.monitors.setdefault(row["business_id"], {})
            by_id[monitor.monitor_id] = monitor
    for row in await conn.fetch("SELECT * FROM monitor_figures"):
        watch.figures[row["client_id"]] = Figures(
            business_id=row["business_id"],
            category_id=row["category_id"],
            balance_minor=row["balance_minor"],
            deposit_minor=row["deposit_minor"],
            deleted=row["deleted"],
        )
    return watch


async def save(conn: asyncpg.Connection, watch: Watch) -> None:
    """What changed since the last save (inside the caller's transaction)."""
    clients, created, deleted = watch.take_changes()
    for business_id, monitor, position in created:
        await conn.execute(
            "INSERT INTO monitor_watch (monitor_id, business_id, definition,"
            " created_position) VALUES ($1, $2, $3::jsonb, $4)"
            " ON CONFLICT (monitor_id) DO NOTHING",
            monitor.monitor_id,
            business_id,
            msgspec.json.encode(monitor).decode(),
            position,
        )
    for monitor_id, position in deleted:
        await conn.execute(
            "UPDATE monitor_watch SET deleted_position = $2 WHERE monitor_id = $1",
            monitor_id,
            position,
        )
    rows = [
        watch.figures[client] for client in sorted(clients) if client in watch.figures
    ]
    if rows:
        await conn.execute(
            _FIGURES,
            [client for client in sorted(clients) if client in watch.figures],
            [row.business_id for row in rows],
            [row.category_id for row in rows],
            [row.balance_minor for row in rows],
            [row.deposit_minor for row in rows],
            [row.deleted for row in rows],
        )
