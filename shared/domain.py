"""The ledger's model: a stream's state, and how each recorded event evolves it.

Pure, no I/O. evolve(state, envelope) applies one recorded event; what a command may
do with a state is decided in decide.py (hop 2). The command side evolves the states it
decides on; projections follow the same arithmetic, `as_of` and the audit replay it.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from shared import events as e

# Every business has this category from its creation on; a client created without a
# category_id, or an import row naming none without a form category, lands in it.
DEFAULT_CATEGORY = "Uncategorised"


def name_key(name: str) -> str:
    """Category names are unique per business ignoring case and surrounding spaces."""
    return name.strip().casefold()


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
    # Personal fields: None once the client was erased.
    first_name: str | None = ""
    last_name: str | None = ""
    phone_number: str | None = ""
    business_name: str | None = ""
    business_address: str | None = ""
    business_phone: str | None = ""
    business_location: str | None = ""
    business_email: str | None = ""
    archived: bool = False
    deleted: bool = False
    erased: bool = False
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
    # The key its personal fields are sealed with (shared/personal_data.py): the
    # write side's, from client_keys, never from an event; None for a client whose
    # events were written before keys existed (stored as they are).
    personal_key: bytes | None = None

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
    elif isinstance(payload, e.ClientErased):
        for name in e.PROFILE_FIELDS:
            setattr(state, name, None)
        state.erased, state.personal_key = True, None
        state.updated_at = at
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
