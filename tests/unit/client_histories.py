"""What the domain tests are given: events in their envelopes, a client's state after
a history of them, postings, deposits, a category, and reversal commands, all for one
business and one client."""

from __future__ import annotations

import datetime as dt
import uuid

from shared import commands as c
from shared import domain
from shared import events as e

AT = dt.datetime(2024, 11, 4, 16, 13, 37, 123456, tzinfo=dt.UTC)
DAY = dt.date(2024, 11, 4)
BUSINESS = 7


def envelope(
    version: int, payload: e.LedgerEvent, stream: str = "client-1"
) -> e.Envelope:
    return e.Envelope(
        event_id=uuid.uuid4(),
        type=e.event_type(payload),
        business_id=BUSINESS,
        stream_id=stream,
        version=version,
        position=version,
        schema_version=1,
        recorded_at=AT + dt.timedelta(seconds=version),
        metadata=e.Metadata(correlation_id="test"),
        payload=payload,
        hash=f"h{version}",
    )


def history(*payloads: e.LedgerEvent) -> domain.ClientState:
    created = e.ClientCreated(
        client_id=1, account_id=1000, category_id=3, business_name="Abas"
    )
    state = None
    for version, payload in enumerate((created, *payloads), start=1):
        state = domain.evolve_client(state, envelope(version, payload))
    assert state is not None
    return state


def posted(
    entry_type: e.EntryType, amount_minor: int, date: dt.date = DAY
) -> e.TransactionPosted:
    return e.TransactionPosted(
        transaction_id=amount_minor,
        client_id=1,
        account_id=1000,
        entry_type=entry_type,
        amount_minor=amount_minor,
        date=date,
    )


def deposited(entry_type: e.EntryType, amount_minor: int) -> e.DepositPosted:
    return e.DepositPosted(
        deposit_id=amount_minor,
        client_id=1,
        deposit_account_id=2000,
        entry_type=entry_type,
        amount_minor=amount_minor,
        date=DAY,
    )


def category(business_id: int = BUSINESS) -> domain.CategoryState:
    return domain.CategoryState(
        business_id=business_id,
        category_id=3,
        name="Class of 2021",
        description="",
        created_at=AT,
    )


def reverse_transaction(
    transaction_id: int, today: dt.date = DAY, reason: str = ""
) -> c.ReverseTransaction:
    return c.ReverseTransaction(
        business_id=BUSINESS,
        client_id=1,
        transaction_id=transaction_id,
        today=today,
        reason=reason,
    )


def reverse_deposit(deposit_id: int, today: dt.date = DAY) -> c.ReverseDeposit:
    return c.ReverseDeposit(
        business_id=BUSINESS, client_id=1, deposit_id=deposit_id, today=today
    )
