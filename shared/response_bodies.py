"""The response bodies both sides render: the seed's client object and its relatives.

The command side renders from its ClientState, the query side from read-model rows;
both go through ClientFigures so the two can never disagree on a field.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import msgspec

from shared import domain
from shared.money import to_number, to_text

encoder = msgspec.json.Encoder(decimal_format="number")


def timestamp(at: dt.datetime) -> str:
    """UTC with real microseconds, as `2024-11-04T16:13:37.123456Z`."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ClientFigures(msgspec.Struct, kw_only=True, frozen=True):
    """What a client object is made of, whichever side renders it."""

    client_id: int
    owner_id: int
    business_id: int
    first_name: str
    last_name: str
    phone_number: str
    business_name: str
    business_address: str
    business_phone: str
    business_location: str
    business_email: str
    created_at: dt.datetime
    updated_at: dt.datetime
    account_id: int
    category: str
    category_id: int
    deposit_minor: int
    deposit_account_id: int | None
    archived: bool
    debit_minor: int
    credit_minor: int


class TransactionBody(msgspec.Struct, kw_only=True, frozen=True):
    id: int
    client_id: int
    type: str
    amount: Decimal
    date: dt.date
    description: str
    reference: str
    created_at: str
    balance_after: Decimal
    reversed: bool = False
    reversal_of: int | None = None


class DepositBody(msgspec.Struct, kw_only=True, frozen=True):
    id: int
    client_id: int
    type: str
    amount: Decimal
    date: dt.date
    description: str
    created_at: str
    deposit_after: Decimal
    reversed: bool = False
    reversal_of: int | None = None


class ClientBody(msgspec.Struct, kw_only=True, frozen=True):
    """The seed's client object, field for field and in the seed's order."""

    id: int
    owner_id: int
    business_id: int
    first_name: str
    last_name: str
    phone_number: str
    business_name: str
    business_address: str
    business_phone: str
    business_location: str
    business_email: str
    created_at: str
    updated_at: str
    account_id: int
    category: str
    category_id: int
    deposit_amount: Decimal
    deposit_account_id: int | None
    archived: bool
    transactions: list[TransactionBody]
    unformated_balance: Decimal
    balance: str
    total_debit: str
    total_credit: str


class StatementBody(ClientBody, kw_only=True, frozen=True):
    opening_balance: Decimal
    closing_balance: Decimal
    transactions_count: int


class CategoryBody(msgspec.Struct, kw_only=True, frozen=True):
    id: int
    business_id: int
    name: str
    description: str
    created_at: str
    updated_at: str
    archived: bool
    customer_count: int


class DeletedBody(msgspec.Struct, kw_only=True, frozen=True):
    message: str
    id: int


class SummaryBody(msgspec.Struct, kw_only=True, frozen=True):
    total_deposits: Decimal
    customer_count: int
    archived_customers: int
    unarchived_customers: int
    total_balance: Decimal


def client_fields(figures: ClientFigures) -> dict[str, object]:
    """The ClientBody fields (all but `transactions`) for a client's figures."""
    balance = figures.debit_minor - figures.credit_minor
    return {
        "id": figures.client_id,
        "owner_id": figures.owner_id,
        "business_id": figures.business_id,
        "first_name": figures.first_name,
        "last_name": figures.last_name,
        "phone_number": figures.phone_number,
        "business_name": figures.business_name,
        "business_address": figures.business_address,
        "business_phone": figures.business_phone,
        "business_location": figures.business_location,
        "business_email": figures.business_email,
        "created_at": timestamp(figures.created_at),
        "updated_at": timestamp(figures.updated_at),
        "account_id": figures.account_id,
        "category": figures.category,
        "category_id": figures.category_id,
        "deposit_amount": to_number(figures.deposit_minor),
        "deposit_account_id": figures.deposit_account_id,
        "archived": figures.archived,
        "unformated_balance": to_number(balance),
        "balance": to_text(balance),
        "total_debit": to_text(figures.debit_minor),
        "total_credit": to_text(figures.credit_minor),
    }


def client_body(figures: ClientFigures) -> ClientBody:
    return ClientBody(transactions=[], **client_fields(figures))  # type: ignore[arg-type]


def client_figures(
    state: domain.ClientState, category: str, owner_id: int
) -> ClientFigures:
    """A client's figures from its write-side state (folded from its events)."""
    return ClientFigures(
        client_id=state.client_id,
        owner_id=owner_id,
        business_id=state.business_id,
        first_name=state.first_name,
        last_name=state.last_name,
        phone_number=state.phone_number,
        business_name=state.business_name,
        business_address=state.business_address,
        business_phone=state.business_phone,
        business_location=state.business_location,
        business_email=state.business_email,
        created_at=state.created_at,
        updated_at=state.updated_at,
        account_id=state.account_id,
        category=category,
        category_id=state.category_id,
        deposit_minor=state.deposit_minor,
        deposit_account_id=state.deposit_account_id,
        archived=state.archived,
        debit_minor=state.debit_minor,
        credit_minor=state.credit_minor,
    )
