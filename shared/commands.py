"""Commands: what a caller asks the ledger to do, and the ids they draw.

The appender decides the commands HTTP sends (shared/decide.py); an import is one
command whose rows become those same commands (shared/decide_import.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TypeVar

import msgspec

from shared.events import EntryType, MonitorCreated


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


class EraseClient(Command, kw_only=True, frozen=True):
    """Destroy the client's key: its personal fields, everywhere, are gone; its
    figures stay. The one command a deleted client takes."""

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


SCOPES = ("client", "category", "business")


class CreateMonitor(Command, kw_only=True, frozen=True):
    """The monitor as its monitor.created event will hold it (its id drawn by the
    route, a UUID: no sequence to read)."""

    definition: MonitorCreated


class DeleteMonitor(Command, kw_only=True, frozen=True):
    monitor_id: str


MonitorCommand = CreateMonitor | DeleteMonitor
ClientCommand = (
    UpdateClient
    | SetArchived
    | DeleteClient
    | EraseClient
    | PostTransaction
    | PostDeposit
    | ReverseTransaction
    | ReverseDeposit
)
LedgerCommand = CreateCategory | CreateClient | ClientCommand | MonitorCommand


class ImportRow(msgspec.Struct, kw_only=True, frozen=True):
    """One valid spreadsheet row: a client, its category by name, its opening figures
    (unpaid is signed: below zero, the business owes the client)."""

    row_number: int
    business_name: str
    business_phone: str = ""
    business_email: str = ""
    business_address: str = ""
    unpaid_minor: int = 0
    deposit_minor: int = 0
    category_name: str | None = None
    archived: bool = False


class ImportClients(Command, kw_only=True, frozen=True):
    """A spreadsheet import. Not one the appender takes: decide_import turns its rows
    into the commands above, and the import commits them in a transaction of its
    own (a 100,000-row import must not hold up the postings queued behind it)."""

    import_id: str
    category_id: int  # where a row that names no category goes
    file_sha256: str
    rows: list[ImportRow]


class NewIds(msgspec.Struct, kw_only=True, frozen=True):
    """Ids drawn from PostgreSQL sequences before deciding a command."""

    client_id: int = 0
    account_id: int = 0
    category_id: int = 0
    entry_id: int = 0
    deposit_account_id: int = 0


# The commands that post an entry (a transaction, a deposit posting or a reversal):
# each draws one id from entry_id_seq.
ENTRY_COMMANDS = (PostTransaction, PostDeposit, ReverseTransaction, ReverseDeposit)


class IdCounts(msgspec.Struct, kw_only=True, frozen=True):
    """How many ids to draw from each sequence."""

    clients: int = 0
    accounts: int = 0
    categories: int = 0
    entries: int = 0


def ids_needed(kinds: Mapping[type[Command], int]) -> IdCounts:
    """The ids so many commands of each kind draw (DrawnIds.next_for hands them out):
    a creation draws a client and its account, a category creation its id, each
    posting or reversal an entry, and each deposit posting a deposit account too
    (kept only when the client has none yet)."""

    def count(*wanted: type[Command]) -> int:
        return sum(n for kind, n in kinds.items() if issubclass(kind, wanted))

    clients = count(CreateClient)
    return IdCounts(
        clients=clients,
        accounts=clients + count(PostDeposit),
        categories=count(CreateCategory),
        entries=count(*ENTRY_COMMANDS),
    )


class DrawnIds:
    """Ids drawn from the sequences in one go, handed out command by command."""

    def __init__(
        self,
        clients: Iterable[int],
        accounts: Iterable[int],
        categories: Iterable[int],
        entries: Iterable[int],
    ) -> None:
        self._clients = iter(clients)
        self._accounts = iter(accounts)
        self._categories = iter(categories)
        self._entries = iter(entries)

    def next_for(self, command: Command) -> NewIds:
        if isinstance(command, CreateClient):
            return NewIds(
                client_id=next(self._clients), account_id=next(self._accounts)
            )
        if isinstance(command, CreateCategory):
            return NewIds(category_id=next(self._categories))
        if isinstance(command, PostDeposit):
            return NewIds(
                entry_id=next(self._entries), deposit_account_id=next(self._accounts)
            )
        if isinstance(command, ENTRY_COMMANDS):
            return NewIds(entry_id=next(self._entries))
        return NewIds()


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
