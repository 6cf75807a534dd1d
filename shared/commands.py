"""Commands: what a caller asks the ledger to do; the appender decides them."""

from __future__ import annotations

import datetime as dt

import msgspec

from shared.events import EntryType


class Command(msgspec.Struct, kw_only=True, frozen=True):
    business_id: int


class CreateCategory(Command, kw_only=True, frozen=True):
    name: str
    description: str = ""


class CreateClient(Command, kw_only=True, frozen=True):
    category_id: int | None = None
    first_name: str = ""
    last_name: str = ""
    phone_number: str = ""
    business_name: str
    business_address: str = ""
    business_phone: str = ""
    business_location: str = ""
    business_email: str = ""


class UpdateClient(Command, kw_only=True, frozen=True):
    client_id: int
    expected_version: int | None = None
    first_name: str | msgspec.UnsetType = msgspec.UNSET
    last_name: str | msgspec.UnsetType = msgspec.UNSET
    phone_number: str | msgspec.UnsetType = msgspec.UNSET
    business_name: str | msgspec.UnsetType = msgspec.UNSET
    business_address: str | msgspec.UnsetType = msgspec.UNSET
    business_phone: str | msgspec.UnsetType = msgspec.UNSET
    business_location: str | msgspec.UnsetType = msgspec.UNSET
    business_email: str | msgspec.UnsetType = msgspec.UNSET
    category_id: int | msgspec.UnsetType = msgspec.UNSET


class SetArchived(Command, kw_only=True, frozen=True):
    client_id: int
    archived: bool | None = None  # None toggles


class DeleteClient(Command, kw_only=True, frozen=True):
    client_id: int


class PostTransaction(Command, kw_only=True, frozen=True):
    client_id: int
    entry_type: EntryType
    amount_minor: int
    date: dt.date
    description: str = ""
    reference: str = ""


class PostDeposit(Command, kw_only=True, frozen=True):
    client_id: int
    entry_type: EntryType
    amount_minor: int
    date: dt.date
    description: str = ""


class ReverseTransaction(Command, kw_only=True, frozen=True):
    client_id: int
    transaction_id: int
    today: dt.date  # the reversal is dated today, or the original's date if later
    reason: str = ""


class ReverseDeposit(Command, kw_only=True, frozen=True):
    client_id: int
    deposit_id: int
    today: dt.date
    reason: str = ""


ClientCommand = (
    UpdateClient
    | SetArchived
    | DeleteClient
    | PostTransaction
    | PostDeposit
    | ReverseTransaction
    | ReverseDeposit
)
LedgerCommand = CreateCategory | CreateClient | ClientCommand


class NewIds(msgspec.Struct, kw_only=True, frozen=True):
    """Ids the appender drew from PostgreSQL sequences before deciding a command."""

    client_id: int = 0
    account_id: int = 0
    category_id: int = 0
    entry_id: int = 0
    deposit_account_id: int = 0
