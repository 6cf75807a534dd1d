"""Event payloads (msgspec structs tagged with their dotted wire names), the envelope.

The tags are the event types on the wire and in the store; never rename one. New fields
need defaults so old events still decode (msgspec's schema-evolution rules).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

import msgspec

EntryType = Literal["debit", "credit"]
MonitorScope = Literal["client", "category", "business"]
MonitorFigure = Literal["balance", "deposit"]
MonitorCondition = Literal[">=", "<="]
# The version every event type starts at. A type's current version is in
# shared/upcasting.py (UPCASTERS.current_version), which new events are written with.
SCHEMA_VERSION = 1


class Event(msgspec.Struct, tag_field="type", kw_only=True, frozen=True):
    """Base of every payload; `type` holds the tag."""


class CategoryCreated(Event, tag="category.created", kw_only=True, frozen=True):
    category_id: int
    name: str
    description: str = ""


class ClientCreated(Event, tag="client.created", kw_only=True, frozen=True):
    client_id: int
    account_id: int
    category_id: int
    first_name: str | None = ""
    last_name: str | None = ""
    phone_number: str | None = ""
    business_name: str | None
    business_address: str | None = ""
    business_phone: str | None = ""
    business_location: str | None = ""
    business_email: str | None = ""


class ClientUpdated(Event, tag="client.updated", kw_only=True, frozen=True):
    """Only the fields that changed are present; absent ones are UNSET."""

    client_id: int
    first_name: str | None | msgspec.UnsetType = msgspec.UNSET
    last_name: str | None | msgspec.UnsetType = msgspec.UNSET
    phone_number: str | None | msgspec.UnsetType = msgspec.UNSET
    business_name: str | None | msgspec.UnsetType = msgspec.UNSET
    business_address: str | None | msgspec.UnsetType = msgspec.UNSET
    business_phone: str | None | msgspec.UnsetType = msgspec.UNSET
    business_location: str | None | msgspec.UnsetType = msgspec.UNSET
    business_email: str | None | msgspec.UnsetType = msgspec.UNSET
    category_id: int | msgspec.UnsetType = msgspec.UNSET


class ClientArchived(Event, tag="client.archived", kw_only=True, frozen=True):
    client_id: int


class ClientUnarchived(Event, tag="client.unarchived", kw_only=True, frozen=True):
    client_id: int


class ClientDeleted(Event, tag="client.deleted", kw_only=True, frozen=True):
    client_id: int


class ClientErased(Event, tag="client.erased", kw_only=True, frozen=True):
    """The client's key was destroyed with this event: its personal fields, in every
    event of its stream, are unreadable from now on (shared/personal_data.py) and
    read as null. Its figures stay. Subscribers delete their copies."""

    client_id: int


class TransactionPosted(Event, tag="transaction.posted", kw_only=True, frozen=True):
    transaction_id: int
    client_id: int
    account_id: int
    entry_type: EntryType
    amount_minor: int
    date: dt.date
    description: str | None = ""
    reference: str | None = ""


class DepositPosted(Event, tag="deposit.posted", kw_only=True, frozen=True):
    deposit_id: int
    client_id: int
    deposit_account_id: int
    entry_type: EntryType
    amount_minor: int
    date: dt.date
    description: str | None = ""


class TransactionReversed(Event, tag="transaction.reversed", kw_only=True, frozen=True):
    """Undoes a posted transaction: a posting of the opposite entry type and the same
    amount, with an id of its own. The original stays in the history."""

    transaction_id: int  # the reversal entry's own id
    reversal_of: int  # the transaction it reverses
    client_id: int
    account_id: int
    entry_type: EntryType  # the opposite of the original's
    amount_minor: int
    date: dt.date  # today (UTC), or the original's date when that is later
    reason: str | None = ""


class DepositReversed(Event, tag="deposit.reversed", kw_only=True, frozen=True):
    """Undoes a deposit posting, the way TransactionReversed undoes a transaction."""

    deposit_id: int  # the reversal entry's own id
    reversal_of: int  # the deposit posting it reverses
    client_id: int
    deposit_account_id: int
    entry_type: EntryType  # the opposite of the original's
    amount_minor: int
    date: dt.date
    reason: str | None = ""


class ClientsImported(Event, tag="clients.imported", kw_only=True, frozen=True):
    """A spreadsheet import: one per import, on its own stream; the clients and their
    opening postings follow as ordinary events with the import id as correlation id."""

    import_id: str
    category_id: int = 0
    imported: int = 0
    total_unpaid_minor: int = 0
    file_sha256: str = ""


class MonitorCreated(Event, tag="monitor.created", kw_only=True, frozen=True):
    """A balance monitor: for each client in its scope, the line `figure condition
    threshold_minor`. It fires on crossings after this event (shared/monitors.py)."""

    monitor_id: str
    scope: MonitorScope
    client_id: int | None = None  # scope "client"
    category_id: int | None = None  # scope "category"
    figure: MonitorFigure
    condition: MonitorCondition
    threshold_minor: int


class MonitorDeleted(Event, tag="monitor.deleted", kw_only=True, frozen=True):
    monitor_id: str


class MonitorTriggered(Event, tag="monitor.triggered", kw_only=True, frozen=True):
    """A client's figure crossed the monitor's line at `position` (the crossing
    event's): recorded by the monitor process (services/monitor/), once per
    (monitor, client, position)."""

    monitor_id: str
    client_id: int
    figure: MonitorFigure
    condition: MonitorCondition
    threshold_minor: int
    value_minor: int
    position: int


class ChainHead(msgspec.Struct, kw_only=True, frozen=True):
    """A stream's last event at a checkpoint: its version and hash."""

    stream_id: str
    version: int
    hash: str


class ChainCheckpoint(Event, tag="ledger.checkpoint", kw_only=True, frozen=True):
    """Chain heads of a business's streams, recorded outside the events table too and
    published, so subscribers hold a copy: deleting a stream's last events shows."""

    checkpoint_id: str
    heads: list[ChainHead]


LedgerEvent = (
    CategoryCreated
    | ClientCreated
    | ClientUpdated
    | ClientArchived
    | ClientUnarchived
    | ClientDeleted
    | ClientErased
    | TransactionPosted
    | DepositPosted
    | ClientsImported
    | TransactionReversed
    | DepositReversed
    | ChainCheckpoint
    | MonitorCreated
    | MonitorDeleted
    | MonitorTriggered
)

PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "phone_number",
    "business_name",
    "business_address",
    "business_phone",
    "business_location",
    "business_email",
)


class Metadata(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=False):
    correlation_id: str
    causation_id: str | None = None
    principal: str | None = None
    idempotency_key: str | None = None


class Envelope(msgspec.Struct, kw_only=True, frozen=True):
    """A recorded event as stored, published on RabbitMQ and read by projectors."""

    event_id: uuid.UUID
    type: str
    business_id: int
    stream_id: str
    version: int
    position: int
    schema_version: int
    recorded_at: dt.datetime
    metadata: Metadata
    payload: LedgerEvent
    hash: str


def client_stream(client_id: int) -> str:
    return f"client-{client_id}"


def category_stream(category_id: int) -> str:
    return f"category-{category_id}"


def import_stream(import_id: str) -> str:
    return f"import-{import_id}"


def monitor_stream(monitor_id: str) -> str:
    return f"monitor-{monitor_id}"


def checkpoint_stream(business_id: int) -> str:
    return f"checkpoint-{business_id}"


def event_type(payload: LedgerEvent) -> str:
    """The payload's wire name (its msgspec tag). On the hot path: a plain lookup."""
    tag = type(payload).__struct_config__.tag
    assert isinstance(tag, str)
    return tag
