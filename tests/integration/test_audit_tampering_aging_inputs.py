"""`ledger audit verify` and what the aged receivables report reads besides the
statement's counts and sums: each line's date and its reversal link, changed in
rm_transactions as the superuser behind the projection's back."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from services.audit.verify import verify
from shared.key_settings import settings_keyring
from tests.integration.audit_history import history, report_of, tamper
from tests.integration.tampering import figures, stored_digest
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
    line 123, are each named as the statement's `transaction_digest`; counts and
    sums are untouched. Then a debit's and a credit's dates exchanged (same sums of
    everything): named too."""
    ids = await history(service, business)
    bid, stream = business["business_id"], f"client-{ids['first']}"
    clean = await stored_digest(admin, stream)
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

    assert report.differences == figures(
        bid, stream, "statement",
        transaction_digest=(clean, await stored_digest(admin, stream)),
    )  # fmt: skip


async def test_two_lines_dates_exchanged_behind_its_back_are_named(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """`first`'s debit moved 40 days back and a second debit of the same amount
    moved 40 days forward: counts, sums and the sum of amount x date are what they
    were, yet the aged receivables would change; the digest names it."""
    ids = await history(service, business)
    answer = await service.post(
        f"/api/v3/clients/{ids['first']}/transactions",
        json={"type": "debit", "amount": 150},
        headers=business["headers"],
    )
    assert answer.status == 201, await answer.text()
    bid, stream = business["business_id"], f"client-{ids['first']}"
    clean = await stored_digest(admin, stream)
    await tamper(
        admin,
        "UPDATE rm_transactions SET date = date + CASE WHEN transaction_id = $2"
        " THEN -40 ELSE 40 END WHERE client_id = $1 AND entry_type = 'debit'",
        ids["first"],
        await admin.fetchval(
            "SELECT min(transaction_id) FROM rm_transactions WHERE client_id = $1",
            ids["first"],
        ),
    )

    report = await report_of(environment, pool, business)

    assert report.differences == figures(
        bid, stream, "statement",
        transaction_digest=(clean, await stored_digest(admin, stream)),
    )  # fmt: skip


async def test_the_largest_amounts_verify_clean(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
) -> None:
    """Two postings of the largest amount a posting may have, 999,999,999,999.99: the
    statement check's sums do not overflow, and verify is clean."""
    ids = await history(service, business)
    for kind in ("debit", "credit"):
        answer = await service.post(
            f"/api/v3/clients/{ids['first']}/transactions",
            json={"type": kind, "amount": "999999999999.99"},
            headers=business["headers"],
        )
        assert answer.status == 201, await answer.text()

    report = await report_of(environment, pool, business)

    assert (report.ok, report.differences) == (True, [])


async def test_a_line_moved_to_another_business_is_named(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """`first`'s debit given another business's id in rm_transactions (its client,
    count and sums unchanged): a verify of the whole database names the line's
    digest, since reports read lines by business."""
    ids = await history(service, business)
    bid, stream = business["business_id"], f"client-{ids['first']}"
    clean = await stored_digest(admin, stream)
    await tamper(
        admin,
        "UPDATE rm_transactions SET business_id = business_id + 1000000"
        " WHERE client_id = $1 AND entry_type = 'debit'",
        ids["first"],
    )

    async with pool.acquire() as conn:
        report = await verify(conn, settings_keyring(environment.settings), None)

    moved = [d for d in report.differences if d.stream_id == stream]
    assert moved == figures(
        bid, stream, "statement",
        transaction_digest=(clean, await stored_digest(admin, stream)),
    )  # fmt: skip


async def test_reversed_marks_moved_to_another_line_are_named(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """`first`'s debit reversed through the API, then its `reversed` mark moved to the
    credit in rm_transactions (the count of marks unchanged; the aged receivables
    would count the reversed debit): named as `transaction_reversed_ids`."""
    ids = await history(service, business)
    bid, stream = business["business_id"], f"client-{ids['first']}"
    debit, credit = await admin.fetch(
        "SELECT transaction_id FROM rm_transactions WHERE client_id = $1"
        " ORDER BY entry_type DESC",
        ids["first"],
    )
    answer = await service.post(
        f"/api/v3/clients/{ids['first']}/transactions/{debit[0]}/reverse",
        json={},
        headers=business["headers"],
    )
    assert answer.status == 201, await answer.text()
    await tamper(
        admin,
        "UPDATE rm_transactions SET reversed = (transaction_id = $2)"
        " WHERE client_id = $1 AND reversal_of IS NULL",
        ids["first"],
        credit[0],
    )

    report = await report_of(environment, pool, business)

    assert report.differences == figures(
        bid, stream, "statement", transaction_reversed_ids=(debit[0], credit[0])
    )
