"""What the client sends and gets back: typed msgspec structs, money as Decimal.

The response bodies the service renders from `shared.response_bodies` are decoded into
those same structs (ClientBody, StatementBody, TransactionBody, DepositBody,
CategoryBody, SummaryBody, and here under the SDK's names Deleted, AuditReport and
AuditDifference): their money fields are `Decimal`, which msgspec decodes from the
JSON number's own digits, so `20351822.92` arrives exactly, never through a float. The
other bodies are described here, field for field.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, Literal, TypeVar

import msgspec

from shared.events import Envelope
from shared.response_bodies import (
    CategoryBody,
    ClientBody,
    DeletedBody,
    DepositBody,
    Difference,
    Report,
    StatementBody,
    SummaryBody,
    TransactionBody,
)

__all__ = [
    "Amount",
    "AuditDifference",
    "AuditReport",
    "CategoryBody",
    "ClientBody",
    "ClientChanges",
    "ClientsPage",
    "Committed",
    "Deleted",
    "DepositBody",
    "EventPage",
    "Health",
    "ImportResult",
    "ImportStatus",
    "NewClient",
    "Readiness",
    "StatementBody",
    "SummaryBody",
    "TransactionBody",
    "Versioned",
    "amount_json",
    "minor_units",
]

# The SDK's names for the service's bodies it decodes as they are.
Deleted = DeletedBody
AuditDifference = Difference
AuditReport = Report

T = TypeVar("T")
# What a caller may pass as an amount. Never float: 0.1 + 0.2 is not 0.3, and the
# service's money is exact; `amount_json` raises TypeError for one.
Amount = Decimal | int | str


@dataclass(frozen=True)
class Committed(Generic[T]):
    """A command the service committed (2xx: durable).

    `accepted` (202) means committed but not yet visible in every read model, either
    because `respond_async` asked for it or the read-your-writes wait ran out; pass
    `position` as `min_position` to a later query (from any service) to read it.
    `replayed` means the service answered from an earlier request with the same
    `idempotency_key` (the write happened once)."""

    body: T
    status: int
    position: int | None
    idempotency_key: str
    replayed: bool

    @property
    def accepted(self) -> bool:
        return self.status == 202


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A body with its stream version (the ETag), for `update_client(if_match=...)`."""

    body: T
    version: int


class ClientsPage(msgspec.Struct, kw_only=True, frozen=True):
    clients: list[ClientBody]
    total: int


class ImportResult(msgspec.Struct, kw_only=True, frozen=True):
    """201 (visible) or 202 (committed; above 5,000 rows, poll `status_url`)."""

    import_id: str
    category_id: int
    imported: int
    total_unpaid: Decimal
    status_url: str | None = None


class ImportStatus(msgspec.Struct, kw_only=True, frozen=True):
    import_id: str
    status: str  # "committed" (read models still catching up) or "done"
    rows_committed: int
    rows_visible: int


class EventPage(msgspec.Struct, kw_only=True, frozen=True):
    """A page of the event feed; pass `next_after` back as `after`."""

    data: list[Envelope]
    next_after: int


class ClientEvents(msgspec.Struct, kw_only=True, frozen=True):
    data: list[Envelope]


class Health(msgspec.Struct, kw_only=True, frozen=True):
    status: str


class Readiness(msgspec.Struct, kw_only=True, frozen=True):
    status: str  # "ready" or "not ready"
    checks: dict[str, str]
    lag_s: float  # projection lag in seconds (a duration, not money)
    parked_events: int

    @property
    def ready(self) -> bool:
        return self.status == "ready"


def minor_units(amount: Decimal) -> int:
    """An amount from a response as integer minor units (cents), exactly:
    Decimal("20351822.92") -> 2035182292. More than two decimals is a ValueError."""
    cents = amount.scaleb(2)
    if not cents.is_finite() or cents != cents.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of cents")
    return int(cents)


def amount_json(value: Amount) -> Decimal | int | str:
    """An amount as the request body carries it: a Decimal or int as a JSON number, a
    string as given (the service parses "1,234.50"). A float is refused here, before
    anything is sent; so is a bool (an int to Python, not an amount)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(
            f"amount must be Decimal, int or str, not {type(value).__name__}"
        )
    if isinstance(value, Decimal) and not value.is_finite():
        return str(value)  # NaN is no JSON number; the service answers 422
    return value


def iso_date(value: dt.date | str | None) -> str | None:
    """A calendar date for a request: a date object or `YYYY-MM-DD` text."""
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class NewClient(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """POST /clients: only `business_name` is required; `category_id` defaults to the
    business's "Uncategorised"."""

    business_name: str
    first_name: str = ""
    last_name: str = ""
    phone_number: str = ""
    business_address: str = ""
    business_phone: str = ""
    business_location: str = ""
    business_email: str = ""
    category_id: int | None = None


class ClientChanges(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """POST /clients/{id}: only the fields given (not UNSET) change."""

    business_name: str | msgspec.UnsetType = msgspec.UNSET
    first_name: str | msgspec.UnsetType = msgspec.UNSET
    last_name: str | msgspec.UnsetType = msgspec.UNSET
    phone_number: str | msgspec.UnsetType = msgspec.UNSET
    business_address: str | msgspec.UnsetType = msgspec.UNSET
    business_phone: str | msgspec.UnsetType = msgspec.UNSET
    business_location: str | msgspec.UnsetType = msgspec.UNSET
    business_email: str | msgspec.UnsetType = msgspec.UNSET
    category_id: int | msgspec.UnsetType = msgspec.UNSET


EntryType = Literal["debit", "credit"]
Param = str | int | bool | dt.date | None


def query_params(**values: Param) -> dict[str, str]:
    """Query parameters as text, leaving out those not given (None)."""
    text: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, bool):
            text[name] = "true" if value else "false"
        elif isinstance(value, dt.date):  # a datetime too: RFC 3339 with its offset
            text[name] = value.isoformat()
        elif value is not None:
            text[name] = str(value)
    return text


def posting_body(
    entry_type: EntryType, amount: Amount, date: dt.date | str | None
) -> dict[str, object]:
    """The fields a transaction and a deposit posting share."""
    body: dict[str, object] = {"type": entry_type, "amount": amount_json(amount)}
    if date is not None:
        body["date"] = iso_date(date)
    return body


def given(**values: str | None) -> dict[str, object]:
    """The optional text fields given (None leaves one out)."""
    return {name: value for name, value in values.items() if value is not None}
