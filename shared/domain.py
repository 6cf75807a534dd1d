"""The ledger's rules: pure decide() and evolve(), no I/O.

decide(command, state, ...) returns the events a command produces or raises a
LedgerError; evolve(state, envelope) applies one recorded event. The command side runs
both; projections follow the same arithmetic, and the audit replays it.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from shared import commands as c
from shared import events as e
from shared.errors import Conflict, NotFound, PreconditionFailed, invalid


class CategoryState(msgspec.Struct, kw_only=True):
    business_id: int
    category_id: int
    name: str
    description: str
    created_at: dt.datetime
    version: int = 0
    last_hash: str = ""


class Entry(msgspec.Struct, kw_only=True, frozen=True):
    """A transaction or deposit posting on a client's stream, as far as reversing it
    needs: what it posted, whether it was reversed, and what it reverses (if it is a
    reversal itself)."""

    entry_type: e.EntryType
    amount_minor: int
    date: dt.date
    reversed: bool = False
    reversal_of: int | None = None


class ClientState(msgspec.Struct, kw_only=True):
    business_id: int
    client_id: int
    account_id: int
    category_id: int
    first_name: str = ""
    last_name: str = ""
    phone_number: str = ""
    business_name: str = ""
    business_address: str = ""
    business_phone: str = ""
    business_location: str = ""
    business_email: str = ""
    archived: bool = False
    deleted: bool = False
    created_at: dt.datetime
    updated_at: dt.datetime
    debit_minor: int = 0
    credit_minor: int = 0
    deposit_minor: int = 0
    deposit_account_id: int | None = None
    # Sums per posting date, for the running balance a back-dated posting lands on.
    balance_by_date: dict[dt.date, int] = msgspec.field(default_factory=dict)
    deposit_by_date: dict[dt.date, int] = msgspec.field(default_factory=dict)
    # Every posting on the stream by id (transaction ids and deposit ids apart), so a
    # reversal is decided against the stream's own history.
    transactions: dict[int, Entry] = msgspec.field(default_factory=dict)
    deposits: dict[int, Entry] = msgspec.field(default_factory=dict)
    version: int = 0
    last_hash: str = ""

    @property
    def balance_minor(self) -> int:
        return self.debit_minor - self.credit_minor


def signed(entry_type: e.EntryType, amount_minor: int) -> int:
    """Debit raises a balance, credit lowers it."""
    return amount_minor if entry_type == "debit" else -amount_minor


def opposite(entry_type: e.EntryType) -> e.EntryType:
    return "credit" if entry_type == "debit" else "debit"


def running_total(by_date: dict[dt.date, int], date: dt.date) -> int:
    """The total of every posting dated on or before `date`."""
    return sum(amount for day, amount in by_date.items() if day <= date)


def lowest_running_total(by_date: dict[dt.date, int], date: dt.date) -> int:
    """The lowest running total on `date` or any later posting date: what a credit
    dated `date` may take without the deposit going below zero at any point since."""
    lowest = running = running_total(by_date, date)
    for day in sorted(day for day in by_date if day > date):
        running += by_date[day]
        lowest = min(lowest, running)
    return lowest


# --- decide ---------------------------------------------------------------------


def decide_create_category(
    command: c.CreateCategory, ids: c.NewIds, name_taken: bool
) -> list[e.LedgerEvent]:
    if name_taken:
        raise Conflict("The category name has already been taken.")
    return [
        e.CategoryCreated(
            category_id=ids.category_id,
            name=command.name,
            description=command.description,
        )
    ]


def decide_create_client(
    command: c.CreateClient, ids: c.NewIds, category: CategoryState | None
) -> list[e.LedgerEvent]:
    _require_category(command.business_id, category)
    assert category is not None
    profile = {name: getattr(command, name) for name in e.PROFILE_FIELDS}
    return [
        e.ClientCreated(
            client_id=ids.client_id,
            account_id=ids.account_id,
            category_id=category.category_id,
            **profile,
        )
    ]


def decide_client(
    command: c.ClientCommand,
    state: ClientState | None,
    ids: c.NewIds,
    category: CategoryState | None,
) -> list[e.LedgerEvent]:
    """Decide a command addressed to an existing client's stream."""
    live = _require_client(command.business_id, command.client_id, state)
    if isinstance(command, c.UpdateClient):
        return _decide_update(command, live, category)
    if isinstance(command, c.SetArchived):
        return _decide_archive(command, live)
    if isinstance(command, c.DeleteClient):
        return _decide_delete(live)
    if isinstance(command, c.PostTransaction):
        return [_decide_transaction(command, live, ids)]
    if isinstance(command, c.ReverseTransaction):
        return [_decide_transaction_reversal(command, live, ids)]
    if isinstance(command, c.ReverseDeposit):
        return [_decide_deposit_reversal(command, live, ids)]
    return [_decide_deposit(command, live, ids)]


def _require_client(
    business_id: int, client_id: int, state: ClientState | None
) -> ClientState:
    if state is None or state.deleted or state.business_id != business_id:
        raise NotFound(f"Client {client_id} not found")
    return state


def _require_category(business_id: int, category: CategoryState | None) -> None:
    if category is None or category.business_id != business_id:
        raise invalid("category_id", "The selected category id is invalid.")


def _decide_update(
    command: c.UpdateClient, state: ClientState, category: CategoryState | None
) -> list[e.LedgerEvent]:
    if command.expected_version is not None and (
        command.expected_version != state.version
    ):
        raise PreconditionFailed("The client was changed since the given ETag")
    changes = {
        name: getattr(command, name)
        for name in (*e.PROFILE_FIELDS, "category_id")
        if getattr(command, name) is not msgspec.UNSET
    }
    if "category_id" in changes:
        _require_category(command.business_id, category)
    if not changes:
        return []
    return [e.ClientUpdated(client_id=state.client_id, **changes)]


def _decide_archive(command: c.SetArchived, state: ClientState) -> list[e.LedgerEvent]:
    archived = (not state.archived) if command.archived is None else command.archived
    if archived == state.archived:
        return []
    if archived:
        return [e.ClientArchived(client_id=state.client_id)]
    return [e.ClientUnarchived(client_id=state.client_id)]


def _decide_delete(state: ClientState) -> list[e.LedgerEvent]:
    if state.balance_minor != 0 or state.deposit_minor != 0:
        raise Conflict(
            "The client cannot be deleted while its balance or deposit is not zero"
        )
    return [e.ClientDeleted(client_id=state.client_id)]


def _stamped(date: dt.date | None) -> dt.date:
    assert date is not None, "the appender fills default dates (commands.stamped)"
    return date


def _decide_transaction(
    command: c.PostTransaction, state: ClientState, ids: c.NewIds
) -> e.LedgerEvent:
    return e.TransactionPosted(
        transaction_id=ids.entry_id,
        client_id=state.client_id,
        account_id=state.account_id,
        entry_type=command.entry_type,
        amount_minor=command.amount_minor,
        date=_stamped(command.date),
        description=command.description,
        reference=command.reference,
    )


def _decide_deposit(
    command: c.PostDeposit, state: ClientState, ids: c.NewIds
) -> e.LedgerEvent:
    available = lowest_running_total(state.deposit_by_date, _stamped(command.date))
    if command.entry_type == "credit" and command.amount_minor > available:
        raise invalid("amount", "The amount may not be greater than the deposit.")
    account_id = state.deposit_account_id or ids.deposit_account_id
    return e.DepositPosted(
        deposit_id=ids.entry_id,
        client_id=state.client_id,
        deposit_account_id=account_id,
        entry_type=command.entry_type,
        amount_minor=command.amount_minor,
        date=_stamped(command.date),
        description=command.description,
    )


def _reversible(entries: dict[int, Entry], entry_id: int, noun: str) -> Entry:
    """The posting to reverse: it must be on this client's stream (404), not be a
    reversal itself (422: it would be a new posting; post one instead), and not be
    reversed yet (409: a posting is reversed at most once)."""
    original = entries.get(entry_id)
    if original is None:
        raise NotFound(f"{noun.capitalize()} {entry_id} not found")
    if original.reversal_of is not None:
        raise invalid(
            f"{noun}_id",
            f"A reversal cannot be reversed; post a new {noun} instead.",
        )
    if original.reversed:
        raise Conflict(f"{noun.capitalize()} {entry_id} has already been reversed")
    return original


def _decide_transaction_reversal(
    command: c.ReverseTransaction, state: ClientState, ids: c.NewIds
) -> e.LedgerEvent:
    original = _reversible(state.transactions, command.transaction_id, "transaction")
    return e.TransactionReversed(
        transaction_id=ids.entry_id,
        reversal_of=command.transaction_id,
        client_id=state.client_id,
        account_id=state.account_id,
        entry_type=opposite(original.entry_type),
        amount_minor=original.amount_minor,
        date=max(_stamped(command.today), original.date),
        reason=command.reason,
    )


def _decide_deposit_reversal(
    command: c.ReverseDeposit, state: ClientState, ids: c.NewIds
) -> e.LedgerEvent:
    """Reversing a top-up (debit) takes its amount out of the deposit again: refused
    when the deposit, from the reversal's date on, holds less (the invariant of every
    deposit credit, checked against the stream's head)."""
    original = _reversible(state.deposits, command.deposit_id, "deposit")
    date = max(_stamped(command.today), original.date)
    entry_type = opposite(original.entry_type)
    available = lowest_running_total(state.deposit_by_date, date)
    if entry_type == "credit" and original.amount_minor > available:
        raise invalid(
            "amount", "The amount to reverse may not be greater than the deposit."
        )
    assert state.deposit_account_id is not None
    return e.DepositReversed(
        deposit_id=ids.entry_id,
        reversal_of=command.deposit_id,
        client_id=state.client_id,
        deposit_account_id=state.deposit_account_id,
        entry_type=entry_type,
        amount_minor=original.amount_minor,
        date=date,
        reason=command.reason,
    )


# --- evolve ---------------------------------------------------------------------


def evolve_category(state: CategoryState | None, event: e.Envelope) -> CategoryState:
    payload = event.payload
    assert isinstance(payload, e.CategoryCreated) and state is None
    return CategoryState(
        business_id=event.business_id,
        category_id=payload.category_id,
        name=payload.name,
        description=payload.description,
        created_at=event.recorded_at,
        version=event.version,
        last_hash=event.hash,
    )


def evolve_client(state: ClientState | None, event: e.Envelope) -> ClientState:
    """Apply one event to a client's state, in place; returns the state."""
    payload = event.payload
    if isinstance(payload, e.ClientCreated):
        assert state is None and event.version == 1
        state = _created(event, payload)
    else:
        assert state is not None and event.version == state.version + 1
        _apply(state, payload, event.recorded_at)
    state.version = event.version
    state.last_hash = event.hash
    assert state.deposit_minor >= 0, "a deposit never goes below zero"
    return state


def _created(event: e.Envelope, payload: e.ClientCreated) -> ClientState:
    profile = {name: getattr(payload, name) for name in e.PROFILE_FIELDS}
    return ClientState(
        business_id=event.business_id,
        client_id=payload.client_id,
        account_id=payload.account_id,
        category_id=payload.category_id,
        created_at=event.recorded_at,
        updated_at=event.recorded_at,
        **profile,
    )


def _apply(state: ClientState, payload: e.LedgerEvent, at: dt.datetime) -> None:
    if isinstance(payload, e.ClientUpdated):
        for name in (*e.PROFILE_FIELDS, "category_id"):
            value = getattr(payload, name)
            if value is not msgspec.UNSET:
                setattr(state, name, value)
        state.updated_at = at
    elif isinstance(payload, e.ClientArchived | e.ClientUnarchived):
        state.archived = isinstance(payload, e.ClientArchived)
        state.updated_at = at
    elif isinstance(payload, e.ClientDeleted):
        state.deleted = True
    elif isinstance(payload, e.TransactionPosted | e.TransactionReversed):
        # A reversal is a posting of the opposite type: it counts in total_debit or
        # total_credit like any posting, and brings the balance back.
        _post(state.balance_by_date, payload.date, payload.entry_type, payload)
        if payload.entry_type == "debit":
            state.debit_minor += payload.amount_minor
        else:
            state.credit_minor += payload.amount_minor
        _record(state.transactions, payload.transaction_id, payload)
    elif isinstance(payload, e.DepositPosted | e.DepositReversed):
        _post(state.deposit_by_date, payload.date, payload.entry_type, payload)
        state.deposit_minor += signed(payload.entry_type, payload.amount_minor)
        state.deposit_account_id = payload.deposit_account_id
        _record(state.deposits, payload.deposit_id, payload)
    else:
        raise AssertionError(f"event {type(payload).__name__} is not a client event")


def _post(
    by_date: dict[dt.date, int],
    date: dt.date,
    entry_type: e.EntryType,
    payload: e.TransactionPosted
    | e.DepositPosted
    | e.TransactionReversed
    | e.DepositReversed,
) -> None:
    by_date[date] = by_date.get(date, 0) + signed(entry_type, payload.amount_minor)


def _record(
    entries: dict[int, Entry],
    entry_id: int,
    payload: e.TransactionPosted
    | e.DepositPosted
    | e.TransactionReversed
    | e.DepositReversed,
) -> None:
    """Remember a posting by id; a reversal also marks its original reversed."""
    reversal_of = None
    if isinstance(payload, e.TransactionReversed | e.DepositReversed):
        original = entries[payload.reversal_of]
        assert original.reversal_of is None and not original.reversed, "reversed once"
        assert original.amount_minor == payload.amount_minor
        assert original.entry_type == opposite(payload.entry_type)
        entries[payload.reversal_of] = msgspec.structs.replace(original, reversed=True)
        reversal_of = payload.reversal_of
    entries[entry_id] = Entry(
        entry_type=payload.entry_type,
        amount_minor=payload.amount_minor,
        date=payload.date,
        reversal_of=reversal_of,
    )
