"""The monitors read model (rm_monitors), as the monitors' streams say it should be:
each live monitor's row with its definition, and no row for a deleted one."""

from __future__ import annotations

import asyncpg

from services.audit.figures import Row, rows_differ, where_business
from services.audit.folds import Folds
from services.audit.report import Difference, Value
from shared import events as e

_FIELDS = (
    "scope",
    "client_id",
    "category_id",
    "figure",
    "condition",
    "threshold_minor",
)


def _fields(definition: e.MonitorCreated) -> dict[str, Value]:
    return {name: getattr(definition, name) for name in _FIELDS}


async def check_monitors(
    conn: asyncpg.Connection, folds: Folds, business_id: int | None
) -> list[Difference]:
    where, args = where_business(business_id)
    columns = ", ".join(("monitor_id", "business_id", *_FIELDS))
    rows = await conn.fetch(f"SELECT {columns} FROM rm_monitors {where}", *args)
    found: dict[str, Row] = {
        e.monitor_stream(row["monitor_id"]): (
            row["business_id"],
            {name: row[name] for name in _FIELDS},
        )
        for row in rows
    }
    expected: dict[str, Row] = {
        stream_id: (state.business_id, _fields(state.definition))
        for stream_id, state in folds.monitors.items()
        if not state.deleted
    }
    return rows_differ("monitor", str, expected, found)
