"""The monitors a business has (rm_monitors), for GET /api/v3/monitors."""

from __future__ import annotations

import datetime as dt

import asyncpg

from shared import events as e

_CREATED = """
INSERT INTO rm_monitors (monitor_id, business_id, scope, client_id, category_id,
                         figure, condition, threshold_minor, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""


async def apply(
    conn: asyncpg.Connection,
    business_id: int,
    recorded_at: dt.datetime,
    payload: e.MonitorCreated | e.MonitorDeleted,
) -> None:
    if isinstance(payload, e.MonitorDeleted):
        await conn.execute(
            "DELETE FROM rm_monitors WHERE monitor_id = $1", payload.monitor_id
        )
        return
    await conn.execute(
        _CREATED,
        payload.monitor_id,
        business_id,
        payload.scope,
        payload.client_id,
        payload.category_id,
        payload.figure,
        payload.condition,
        payload.threshold_minor,
        recorded_at,
    )
