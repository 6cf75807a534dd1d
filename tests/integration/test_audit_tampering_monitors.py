"""`ledger audit verify` and the monitors read model (rm_monitors): a monitor's line
moved, a live monitor's row deleted and a deleted one's row put back, each behind
the projection's back as the superuser, are each named exactly."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from shared.response_bodies import Difference
from tests.integration.audit_history import report_of, tamper
from tests.integration.monitor_calls import new_monitor
from tests.integration.reversal_calls import business_headers
from tests.integration.tampering import figures
from tests.support.environment import Environment


def _row(bid: int, stream: str, expected: str, found: str) -> Difference:
    return Difference(
        kind="monitor",
        business_id=bid,
        stream_id=stream,
        field="row",
        expected=expected,
        found=found,
    )


async def test_monitors_changed_removed_or_revived_behind_its_back_are_named(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """Three monitors, one deleted: the report is clean; then the first's threshold
    and condition are changed, the second's row deleted and the deleted one's row
    inserted again: exactly those four differences."""
    headers = business_headers(business)
    bid = business["business_id"]
    line = {"scope": "business", "figure": "balance", "condition": ">=", "amount": 5}
    changed, removed, revived = [
        await new_monitor(service, headers, **line) for _ in range(3)
    ]
    gone = await service.delete(f"/api/v3/monitors/{revived}", headers=headers)
    assert gone.status == 200
    assert (await report_of(environment, pool, business)).differences == []

    await tamper(
        admin,
        "UPDATE rm_monitors SET threshold_minor = 1, condition = '<='"
        " WHERE monitor_id = $1",
        changed,
    )
    await tamper(admin, "DELETE FROM rm_monitors WHERE monitor_id = $1", removed)
    await tamper(
        admin,
        "INSERT INTO rm_monitors (monitor_id, business_id, scope, figure, condition,"
        " threshold_minor, created_at) VALUES ($1, $2, 'business', 'balance', '>=',"
        " 500, now())",
        revived,
        bid,
    )

    report = await report_of(environment, pool, business)

    expected = [
        *figures(
            bid, f"monitor-{changed}", "monitor",
            condition=(">=", "<="), threshold_minor=(500, 1),
        ),
        _row(bid, f"monitor-{removed}", "present", "absent"),
        _row(bid, f"monitor-{revived}", "absent", "present"),
    ]  # fmt: skip
    assert report.differences == sorted(expected, key=lambda d: d.stream_id or "")
