"""Response bodies of commands, rendered from the write side's own state.

Rendered inside the appender, before commit, so the body stored for an
Idempotency-Key is exactly the body the first caller received.
"""

from __future__ import annotations

from services.command_api.submissions import Outcome, Render
from shared import domain
from shared import events as e
from shared.money import to_number
from shared.response_bodies import (
    CategoryBody,
    DeletedBody,
    DepositBody,
    TransactionBody,
    client_body,
    client_figures,
    encoder,
    timestamp,
)
from shared.store.api_keys import Business


def client(business: Business, status: int) -> Render:
    def render(outcome: Outcome) -> tuple[int, bytes]:
        assert outcome.client is not None
        category = outcome.category.name if outcome.category else ""
        body = client_body(client_figures(outcome.client, category, business.owner_id))
        return status, encoder.encode(body)

    return render


def deleted(outcome: Outcome) -> tuple[int, bytes]:
    assert outcome.client is not None
    body = DeletedBody(message="Client deleted", id=outcome.client.client_id)
    return 200, encoder.encode(body)


def category(outcome: Outcome) -> tuple[int, bytes]:
    state = outcome.category
    assert state is not None
    body = CategoryBody(
        id=state.category_id,
        business_id=state.business_id,
        name=state.name,
        description=state.description,
        created_at=timestamp(state.created_at),
        updated_at=timestamp(state.created_at),
        archived=False,
        customer_count=0,
    )
    return 201, encoder.encode(body)


def transaction(outcome: Outcome) -> tuple[int, bytes]:
    state = outcome.client
    posted = outcome.events[-1].payload
    assert state is not None and isinstance(posted, e.TransactionPosted)
    body = TransactionBody(
        id=posted.transaction_id,
        client_id=posted.client_id,
        type=posted.entry_type,
        amount=to_number(posted.amount_minor),
        date=posted.date,
        description=posted.description,
        reference=posted.reference,
        created_at=timestamp(outcome.events[-1].recorded_at),
        balance_after=to_number(
            domain.running_total(state.balance_by_date, posted.date)
        ),
    )
    return 201, encoder.encode(body)


def deposit(outcome: Outcome) -> tuple[int, bytes]:
    state = outcome.client
    posted = outcome.events[-1].payload
    assert state is not None and isinstance(posted, e.DepositPosted)
    body = DepositBody(
        id=posted.deposit_id,
        client_id=posted.client_id,
        type=posted.entry_type,
        amount=to_number(posted.amount_minor),
        date=posted.date,
        description=posted.description,
        created_at=timestamp(outcome.events[-1].recorded_at),
        deposit_after=to_number(
            domain.running_total(state.deposit_by_date, posted.date)
        ),
    )
    return 201, encoder.encode(body)


def transaction_reversal(outcome: Outcome) -> tuple[int, bytes]:
    """The reversal entry, shaped like a posted transaction, plus `reversal_of`."""
    state = outcome.client
    reversal = outcome.events[-1].payload
    assert state is not None and isinstance(reversal, e.TransactionReversed)
    body = TransactionBody(
        id=reversal.transaction_id,
        client_id=reversal.client_id,
        type=reversal.entry_type,
        amount=to_number(reversal.amount_minor),
        date=reversal.date,
        description=reversal.reason,
        reference="",
        created_at=timestamp(outcome.events[-1].recorded_at),
        balance_after=to_number(
            domain.running_total(state.balance_by_date, reversal.date)
        ),
        reversal_of=reversal.reversal_of,
    )
    return 201, encoder.encode(body)


def deposit_reversal(outcome: Outcome) -> tuple[int, bytes]:
    """The reversal entry, shaped like a deposit posting, plus `reversal_of`."""
    state = outcome.client
    reversal = outcome.events[-1].payload
    assert state is not None and isinstance(reversal, e.DepositReversed)
    body = DepositBody(
        id=reversal.deposit_id,
        client_id=reversal.client_id,
        type=reversal.entry_type,
        amount=to_number(reversal.amount_minor),
        date=reversal.date,
        description=reversal.reason,
        created_at=timestamp(outcome.events[-1].recorded_at),
        deposit_after=to_number(
            domain.running_total(state.deposit_by_date, reversal.date)
        ),
        reversal_of=reversal.reversal_of,
    )
    return 201, encoder.encode(body)
