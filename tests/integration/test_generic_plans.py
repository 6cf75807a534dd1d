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

from projections.batch_statement import Tracking, _statement
from projections.progress import _STREAMS_APPLIED
from projections.registry import PROJECTIONS
from services.audit.chains import _HEADS
from services.command_api.batch_reads import _READ
from services.command_api.category_names import TAKEN
from services.command_api.idempotency import STORED
from services.command_api.stream_states import _CATCH_UP
from shared import events as e
from shared.store.new_events import new_event
from shared.store.postgres import INDEX_PLANS
from tests.support.stored_events import RECORDED_AT

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
    plan = await _generic_plan(admin, STATEMENTS[name])
    assert "Seq Scan" not in plan, plan
    assert "Index" in plan, plan


async def _generic_plan(
    admin: asyncpg.Connection, sql: str, settings: dict[str, str] | None = None
) -> str:
    """The generic plan of `sql`, prepared in a session with `settings`."""
    parameters = max(int(number) for number in re.findall(r"\$(\d+)", sql))
    async with admin.transaction():
        for name, value in (settings or {}).items():
            await admin.execute(f"SET LOCAL {name} = {value}")
        await admin.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await admin.execute(f"PREPARE generic AS {sql}")
        try:
            nulls = ", ".join(["NULL"] * parameters)
            rows = await admin.fetch(f"EXPLAIN EXECUTE generic({nulls})")
        finally:
            await admin.execute("DEALLOCATE generic")
    return "\n".join(row[0] for row in rows)


def _posting(client_id: int, payload: e.LedgerEvent) -> e.Envelope:
    return new_event(
        key=b"k",
        previous_hash="0" * 64,
        business_id=1,
        stream_id=e.client_stream(client_id),
        version=2,
        recorded_at=RECORDED_AT,
        metadata=e.Metadata(correlation_id="c"),
        payload=payload,
    ).stored(position=100 + client_id)


def _projector_statement() -> str:
    """A live batch's one statement (projections/batch_statement.py): a transaction
    and a deposit, each projection's tracking clauses and writes, the NOTIFYs."""
    day = RECORDED_AT.date()
    events = [
        _posting(
            1,
            e.TransactionPosted(
                transaction_id=7,
                client_id=1,
                account_id=1,
                entry_type="debit",
                amount_minor=100,
                date=day,
            ),
        ),
        _posting(
            2,
            e.DepositPosted(
                deposit_id=8,
                client_id=2,
                deposit_account_id=9,
                entry_type="debit",
                amount_minor=100,
                date=day,
            ),
        ),
    ]
    writes = []
    trackings = []
    for projection in PROJECTIONS.values():
        assert projection.writes is not None
        found = projection.writes(events)
        assert found
        writes += found
        known = {event.stream_id: 1 for event in events}
        tracked = {event.stream_id: 2 for event in events}
        trackings.append(Tracking(projection.name, known, tracked, 102, "p"))
    sql, _ = _statement(trackings, writes)
    return sql


async def test_the_projectors_plans_look_rows_up_by_index_in_their_sessions(
    admin: asyncpg.Connection,
) -> None:
    """A projector's session (postgres.INDEX_PLANS) keeps its generic plans (no
    planning per batch) because every plan of its live statement is nested loops
    over index lookups, whatever the tables' size: a plan cached while the tracking
    table was small must not scan it whole once an import has grown it."""
    plan = await _generic_plan(admin, _projector_statement(), INDEX_PLANS)
    for scan in ("Seq Scan", "Hash Join", "Merge Join"):
        assert scan not in plan, plan
    assert "Index" in plan, plan
