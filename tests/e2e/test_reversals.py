"""Reversals end to end: `ledger run` as `make run` starts it, driven over HTTP."""

from __future__ import annotations

from decimal import Decimal

from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import DEPOSIT_FIELDS, TRANSACTION_FIELDS


async def test_a_reversal_undoes_a_posting_and_both_stay_in_the_statement(
    api: Api,
) -> None:
    """Proves, through the separate API, relay and projector processes, that
    reversing a 1,234.50 debit (empty body) answers 201 with a 1,234.50 credit
    `reversal_of` it, the client's balance and the business summary return to 0 while
    both totals show 1,234.50, the statement lists the original (reversed) and the
    reversal, and a second reversal is a 409."""
    client = await api.create_client()
    debit = await api.post_transaction(client["id"], "debit", "1234.50")
    path = f"/api/v3/clients/{client['id']}/transactions/{debit['id']}/reverse"

    reply = await api.post(path)

    assert reply.status == 201, reply.body
    assert list(reply.body) == TRANSACTION_FIELDS
    reversal = reply.body
    assert {**reversal, "id": 0, "created_at": ""} == {
        "id": 0,
        "client_id": client["id"],
        "type": "credit",
        "amount": Decimal("1234.5"),
        "date": reversal["created_at"][:10],  # the UTC day it was recorded
        "description": "",
        "reference": "",
        "created_at": "",
        "balance_after": 0,
        "reversed": False,
        "reversal_of": debit["id"],
    }
    statement = await api.get(f"/api/v3/clients/{client['id']}/transactions")
    assert [
        (line["id"], line["reversed"], line["reversal_of"])
        for line in statement.body["transactions"]
    ] == [(debit["id"], True, None), (reversal["id"], False, debit["id"])]
    assert (
        statement.body["total_debit"],
        statement.body["total_credit"],
        statement.body["balance"],
        statement.body["closing_balance"],
    ) == ("1,234.50", "1,234.50", "0.00", 0)
    summary = await api.get("/api/v3/clients/summary")
    assert summary.body["total_balance"] == 0
    again = await api.post(path, {"reason": "again"})
    assert (again.status, again.body) == (
        409,
        {"message": f"Transaction {debit['id']} has already been reversed"},
    )


async def test_a_deposit_reversal_returns_the_prepayment(api: Api) -> None:
    """Proves a deposit top-up of 500.00 reversed with a reason answers 201 in the
    deposit shape (a credit, deposit_after 0, the reason as description), and the
    client's deposit and the summary's total_deposits are 0 again."""
    client = await api.create_client()
    top_up = await api.post_deposit(client["id"], "debit", 500)
    path = f"/api/v3/clients/{client['id']}/deposits/{top_up['id']}/reverse"

    reply = await api.post(path, {"reason": "Cheque bounced"})

    assert reply.status == 201, reply.body
    assert list(reply.body) == DEPOSIT_FIELDS
    assert (
        reply.body["type"],
        reply.body["amount"],
        reply.body["deposit_after"],
        reply.body["description"],
        reply.body["reversal_of"],
    ) == ("credit", 500, 0, "Cheque bounced", top_up["id"])
    fetched = await api.get(f"/api/v3/clients/{client['id']}")
    assert fetched.body["deposit_amount"] == 0
    summary = await api.get("/api/v3/clients/summary")
    assert summary.body["total_deposits"] == 0
