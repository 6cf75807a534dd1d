"""Response bodies of commands, rendered from the write side's own state.

Rendered inside the appender, before commit, so the body stored for an
Idempotency-Key is exactly the body the first caller received.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec

from services.command_api.submissions import Outcome, Render
from shared import domain
from shared import events as e
from shared.money import to_number
from shared.response_bodies import (
    CategoryBody,
    DeletedBody,
    DepositBody,
    EntryBody,
    MonitorBody,
    MonitorDeletedBody,
    TransactionBody,
    client_body,
    client_figures,
    encoder,
    timestamp,
)
from shared.store.api_keys import Business

# The events that write a statement line: a posting, or a reversal of one.
Entry = (
    e.TransactionPosted | e.TransactionReversed | e.DepositPosted | e.DepositReversed
)


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


def monitor(outcome: Outcome) -> tuple[int, bytes]:
    state = outcome.monitor
    assert state is not None
    definition = state.definition
    body = MonitorBody(
        id=definition.monitor_id,
        scope=definition.scope,
        client_id=definition.client_id,
        category_id=definition.category_id,
        figure=definition.figure,
        condition=definition.condition,
        amount=to_number(definition.threshold_minor),
        created_at=timestamp(state.created_at),
    )
    return 201, encoder.encode(body)


def monitor_deleted(outcome: Outcome) -> tuple[int, bytes]:
    assert outcome.monitor is not None
    monitor_id = outcome.monitor.definition.monitor_id
    return 200, encoder.encode(
        MonitorDeletedBody(message="Monitor deleted", id=monitor_id)
    )


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
    """A posted transaction, or its reversal (shaped like one, plus `reversal_of`)."""
    state, entry = _client_and_entry(outcome)
    assert isinstance(entry, e.TransactionPosted | e.TransactionReversed)
    posted = entry if isinstance(entry, e.TransactionPosted) else None
    # A reversal has no reference: "", or null once its client was erased (as its
    # statement line shows it).
    reversal_reference = None if state.erased else ""
    return _line(
        TransactionBody,
        outcome,
        entry,
        id=entry.transaction_id,
        reference=posted.reference if posted else reversal_reference,
        balance_after=_running(state.balance_by_date, entry),
    )


def deposit(outcome: Outcome) -> tuple[int, bytes]:
    """A deposit posting, or its reversal (shaped like one, plus `reversal_of`)."""
    state, entry = _client_and_entry(outcome)
    assert isinstance(entry, e.DepositPosted | e.DepositReversed)
    return _line(
        DepositBody,
        outcome,
        entry,
        id=entry.deposit_id,
        deposit_after=_running(state.deposit_by_date, entry),
    )


# The routes name a reversal's renderer apart; the entry's type tells them apart here.
transaction_reversal = transaction
deposit_reversal = deposit


def _client_and_entry(outcome: Outcome) -> tuple[domain.ClientState, Entry]:
    """The client after the command and the statement line it wrote (its last
    event)."""
    entry = outcome.events[-1].payload
    assert outcome.client is not None
    assert isinstance(entry, Entry)
    return outcome.client, entry


def _running(by_date: dict[dt.date, int], entry: Entry) -> Decimal:
    """The running total on the entry's date: where a back-dated line lands."""
    return to_number(domain.running_total(by_date, entry.date))


def _line(
    body_type: type[EntryBody], outcome: Outcome, entry: Entry, **own: object
) -> tuple[int, bytes]:
    """A statement line's body: the fields every line shows from its entry, and the
    body type's `own` fields."""
    if isinstance(entry, e.TransactionReversed | e.DepositReversed):
        description, reversal_of = entry.reason, entry.reversal_of
    else:
        description, reversal_of = entry.description, None
    shared = {
        "client_id": entry.client_id,
        "type": entry.entry_type,
        "amount": to_number(entry.amount_minor),
        "date": entry.date,
        "description": description,
        "created_at": timestamp(outcome.events[-1].recorded_at),
        "reversal_of": reversal_of,
    }
    return 201, encoder.encode(msgspec.convert({**shared, **own}, body_type))
