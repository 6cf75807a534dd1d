"""Reversals as an audit recomputes them: folding a client's events, reversals of
both kinds included, gives exactly the figures its read model shows."""

from __future__ import annotations

import asyncpg

from shared import domain
from shared import events as e
from shared.store.event_store import load_stream
from tests.integration.reversal_calls import (
    Service,
    business_headers,
    new_client,
    new_posting,
    post_json,
)


async def test_the_fold_of_the_events_gives_the_figures_the_projection_shows(
    service: Service, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """After postings and reversals of both kinds, evolve_client over the client's
    events (what an audit recomputes) gives exactly rm_clients' debit, credit and
    deposit: 25.00 + 7.00 debited, 25.00 credited back, 12.00 deposited, 5.00 used
    and that use reversed."""
    headers = business_headers(business)
    client_id = await new_client(service, headers)
    base = f"/api/v3/clients/{client_id}"
    debit = await new_posting(
        service, client_id, "transactions", {"type": "debit", "amount": 25}, headers
    )
    await new_posting(
        service, client_id, "transactions", {"type": "debit", "amount": 7}, headers
    )
    await new_posting(
        service, client_id, "deposits", {"type": "debit", "amount": 12}, headers
    )
    used = await new_posting(
        service, client_id, "deposits", {"type": "credit", "amount": 5}, headers
    )
    for path in (f"transactions/{debit}", f"deposits/{used}"):
        status, body = await post_json(service, f"{base}/{path}/reverse", {}, headers)
        assert status == 201, body

    state = None
    for event in await load_stream(pool, e.client_stream(client_id)):
        state = domain.evolve_client(state, event)
    row = await pool.fetchrow(
        "SELECT debit_minor, credit_minor, deposit_minor FROM rm_clients"
        " WHERE client_id = $1",
        client_id,
    )

    assert state is not None and row is not None
    assert (state.debit_minor, state.credit_minor, state.deposit_minor) == (
        3_200,
        2_500,
        1_200,
    )
    assert (row["debit_minor"], row["credit_minor"], row["deposit_minor"]) == (
        3_200,
        2_500,
        1_200,
    )
