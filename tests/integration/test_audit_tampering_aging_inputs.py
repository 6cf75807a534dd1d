"""`ledger audit verify` and what the aged receivables report reads besides the
statement's counts and sums: each line's date and its reversal link, changed in
rm_transactions as the superuser behind the projection's back."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from tests.integration.audit_history import history, report_of, tamper
from tests.integration.tampering import figures
from tests.support.environment import Environment


async def test_a_line_s_date_or_reversal_link_changed_behind_its_back_is_named(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """What the aged receivables report reads besides the sums: `first`'s debit
    back-dated 40 days in rm_transactions, and its credit made to claim it reverses
    line 123, are named as the statement's `transaction_dated` and
    `transaction_reversal_links`; counts and sums are untouched."""
    ids = await history(service, business)
    bid, stream = business["business_id"], f"client-{ids['first']}"
    await tamper(
        admin,
        "UPDATE rm_transactions SET date = date - 40"
        " WHERE client_id = $1 AND entry_type = 'debit'",
        ids["first"],
    )
    await tamper(
        admin,
        "UPDATE rm_transactions SET reversal_of = 123"
        " WHERE client_id = $1 AND entry_type = 'credit'",
        ids["first"],
    )

    report = await report_of(environment, pool, business)

    today = dt.datetime.now(dt.UTC).date().toordinal()
    assert report.differences == figures(
        bid, stream, "statement",
        transaction_dated=(17025 * today, 17025 * today - 15000 * 40),
        transaction_reversal_links=(None, 123),
    )  # fmt: skip
