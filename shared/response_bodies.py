"""The response bodies both sides render: the seed's client object and its relatives,
and the audit's report. The client SDK decodes answers into these same structs.

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


class ClientProfile(msgspec.Struct, kw_only=True, frozen=True):
    """The leading fields of a client body, shown as they are stored; ClientFigures
    and ClientBody both start with them (ClientBody in the seed's order)."""

    id: int
    owner_id: int
    business_id: int
    first_name: str | None  # each personal field None once the client was erased
    last_name: str | None
    phone_number: str | None
    business_name: str | None
    business_address: str | None
    business_phone: str | None
    business_location: str | None
    business_email: str | None


class ClientFigures(ClientProfile, kw_only=True, frozen=True):
    """What a client object is made of, whichever side renders it."""

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
    erased: bool = False


class EntryBody(msgspec.Struct, kw_only=True, frozen=True):
    """The leading fields of a statement line, a transaction's or a deposit's."""

    id: int
    client_id: int
    type: str
    amount: Decimal
    date: dt.date
    description: str | None  # None once its client was erased


class TransactionBody(EntryBody, kw_only=True, frozen=True):
    reference: str | None
    created_at: str
    balance_after: Decimal
    reversed: bool = False
    reversal_of: int | None = None


class DepositBody(EntryBody, kw_only=True, frozen=True):
    created_at: str
    deposit_after: Decimal
    reversed: bool = False
    reversal_of: int | None = None


class ClientBody(ClientProfile, kw_only=True, frozen=True):
    """The seed's client object, field for field and in the seed's order."""

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
    # Only in an erased client's body (DESIGN.md's Decisions: "erasure"): the body of a
    # client never erased keeps the seed's exact fields.
    erased: bool | msgspec.UnsetType = msgspec.UNSET


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


class MonitorBody(msgspec.Struct, kw_only=True, frozen=True):
    """A balance monitor: for each client in `scope` (`client_id`, `category_id` or
    the whole business), fire when `figure` crosses `condition amount`."""

    id: str
    scope: str
    client_id: int | None
    category_id: int | None
    figure: str
    condition: str
    amount: Decimal
    created_at: str


class MonitorsBody(msgspec.Struct, kw_only=True, frozen=True):
    monitors: list[MonitorBody]


class MonitorDeletedBody(msgspec.Struct, kw_only=True, frozen=True):
    message: str
    id: str


class AgingBuckets(msgspec.Struct, kw_only=True, frozen=True):
    """Aged receivables (shared/aging.Buckets) as JSON numbers."""

    current: Decimal
    days_1_30: Decimal
    days_31_60: Decimal
    days_61_90: Decimal
    days_over_90: Decimal
    total: Decimal
    unapplied_credit: Decimal


class AgingClient(AgingBuckets, kw_only=True, frozen=True):
    """One client's line of the report: AgingBuckets' fields, then whose they are."""

    id: int
    business_name: str | None  # None once the client was erased


class AgingBody(msgspec.Struct, kw_only=True, frozen=True):
    as_of: dt.date
    terms_days: int
    totals: AgingBuckets
    clients: list[AgingClient]


class SummaryBody(msgspec.Struct, kw_only=True, frozen=True):
    total_deposits: Decimal
    customer_count: int
    archived_customers: int
    unarchived_customers: int
    total_balance: Decimal


# The body fields a client's figures give as they are (the rest are formatted).
_COPIED_FIELDS = (
    *ClientProfile.__struct_fields__,
    "account_id",
    "category",
    "category_id",
    "deposit_account_id",
    "archived",
)


def client_fields(figures: ClientFigures) -> dict[str, object]:
    """The ClientBody fields (all but `transactions`) for a client's figures."""
    balance = figures.debit_minor - figures.credit_minor
    return {
        **{name: getattr(figures, name) for name in _COPIED_FIELDS},
        "created_at": timestamp(figures.created_at),
        "updated_at": timestamp(figures.updated_at),
        "deposit_amount": to_number(figures.deposit_minor),
        "unformated_balance": to_number(balance),
        "balance": to_text(balance),
        "total_debit": to_text(figures.debit_minor),
        "total_credit": to_text(figures.credit_minor),
        "erased": True if figures.erased else msgspec.UNSET,
    }


def client_body(figures: ClientFigures) -> ClientBody:
    return ClientBody(transactions=[], **client_fields(figures))  # type: ignore[arg-type]


def client_figures(
    state: domain.ClientState, category: str, owner_id: int
) -> ClientFigures:
    """A client's figures from its write-side state (folded from its events): the
    state's fields of the same names, and what the state does not hold."""
    given = {"id": state.client_id, "owner_id": owner_id, "category": category}
    return msgspec.convert({**msgspec.structs.asdict(state), **given}, ClientFigures)


# GET /api/v3/audit/verify and `ledger audit verify`: what the audit found.
Value = str | int | bool | None


class Difference(msgspec.Struct, frozen=True, kw_only=True):
    """One disagreement. `kind` says what was checked: `hash`, `version` (a gap or a
    repeat in a stream), `short` (the stream ends below a checkpointed head),
    `checkpoint` (a checkpointed hash differs), `key` (a row's key id names no key
    in the keyring or a key unfit to sign, or is missing after labelled rows),
    `decode` (a payload that no longer reads), `rule` (events that break a ledger
    rule), or a read model: `client`, `category`, `summary`, `statement`."""

    kind: str
    business_id: int | None = None
    stream_id: str | None = None
    position: int | None = None
    version: int | None = None
    field: str | None = None
    expected: Value = None
    found: Value = None

    def line(self) -> str:
        where = [self.kind]
        if self.business_id is not None:
            where.append(f"business {self.business_id}")
        if self.stream_id is not None:
            where.append(f"stream {self.stream_id}")
        if self.version is not None:
            where.append(f"version {self.version}")
        if self.position is not None:
            where.append(f"position {self.position}")
        field = f"{self.field}: " if self.field else ""
        found = f"expected {self.expected!r}, found {self.found!r}"
        return f"{' '.join(where)}: {field}{found}"


class Report(msgspec.Struct, kw_only=True, frozen=True):
    ok: bool
    businesses: int
    streams: int
    events: int
    differences: list[Difference]

    def summary(self) -> str:
        verdict = "ok" if self.ok else f"{len(self.differences)} differences"
        return (
            f"audit verify: {verdict}; {self.businesses} businesses,"
            f" {self.streams} streams, {self.events} events checked"
        )
