"""The API's and the audit's joins of an array to a table stay index lookups in
PostgreSQL's generic plan: the plan it keeps for a prepared statement after five
executions when that costs no more than the custom ones did. Joined directly, the
batch read's generic plan hash-joined the streams with a sequential scan of the whole
events table, so every batch read every event (services/command_api/batch_reads.py).
Each statement is prepared here with plan_cache_mode = force_generic_plan and its
plan must scan no table whole."""

from __future__ import annotations

import re

import asyncpg
import pytest

from projections.progress import _STREAMS_APPLIED
from services.audit.chains import _HEADS
from services.command_api.batch_reads import _READ
from services.command_api.category_names import TAKEN
from services.command_api.idempotency import STORED
from services.command_api.stream_states import _CATCH_UP

STATEMENTS = {
    "batch read": _READ,
    "stream catch-up": _CATCH_UP,
    "stored answers": STORED,
    "category names": TAKEN,
    "audit heads": _HEADS,
    "read-your-writes check": _STREAMS_APPLIED,
}


@pytest.mark.parametrize("name", STATEMENTS)
async def test_the_generic_plan_looks_rows_up_by_index(
    admin: asyncpg.Connection, name: str
) -> None:
    sql = STATEMENTS[name]
    parameters = max(int(number) for number in re.findall(r"\$(\d+)", sql))
    async with admin.transaction():
        await admin.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await admin.execute(f"PREPARE generic AS {sql}")
        try:
            nulls = ", ".join(["NULL"] * parameters)
            rows = await admin.fetch(f"EXPLAIN EXECUTE generic({nulls})")
        finally:
            await admin.execute("DEALLOCATE generic")
    plan = "\n".join(row[0] for row in rows)
    assert "Seq Scan" not in plan, plan
    assert "Index" in plan, plan
