"""Commands: what a caller asks the ledger to do; the appender decides them."""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

import msgspec

from shared.events import EntryType


class Command(msgspec.Struct, kw_only=True, frozen=True):
    business_id: int


AnyCommand = TypeVar("AnyCommand", bound=Command)


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
    # None: the UTC date of the commit's recorded_at, set by the appender (stamped())
    date: dt.date | None = None
    description: str = ""
    reference: str = ""


class PostDeposit(Command, kw_only=True, frozen=True):
    client_id: int
    entry_type: EntryType
    amount_minor: int
    date: dt.date | None = None  # None: as PostTransaction's
    description: str = ""


class ReverseTransaction(Command, kw_only=True, frozen=True):
    client_id: int
    transaction_id: int
    # The reversal is dated today, or the original's date if later. None: the UTC
    # date of the commit's recorded_at, set by the appender (stamped()).
    today: dt.date | None = None
    reason: str = ""


class ReverseDeposit(Command, kw_only=True, frozen=True):
    client_id: int
    deposit_id: int
    today: dt.date | None = None  # None: as ReverseTransaction's
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


def stamped(command: AnyCommand, today: dt.date) -> AnyCommand:
    """The command with the dates it left to the commit filled with `today`, the
    UTC date of the instant that becomes its events' recorded_at: a posting's default
    date and a reversal's date then never land on another day than the commit, even
    for a request that crosses midnight (the appender decides each attempt afresh)."""
    if isinstance(command, PostTransaction | PostDeposit) and command.date is None:
        return msgspec.structs.replace(command, date=today)
    if isinstance(command, ReverseTransaction | ReverseDeposit):
        if command.today is None:
            return msgspec.structs.replace(command, today=today)
    return command
