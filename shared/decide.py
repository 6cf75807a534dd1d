"""Hop 2: decide. What a command produces, from the state of the stream it addresses.

Pure and synchronous (no I/O): decide(command, state, ...) returns the events a
command produces or raises a LedgerError. The appender decides every HTTP command with
these functions and an import decides each of its rows' commands with them too
(decide_import.py); the state they read is the one domain.py's evolve builds.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from shared import commands as c
from shared import events as e
from shared.domain import (
    CategoryState,
    ClientState,
    Entry,
    lowest_running_total,
    opposite,
)
from shared.errors import Conflict, NotFound, PreconditionFailed, invalid
from shared.personal_data import erased


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
    if isinstance(command, c.EraseClient):
        return _decide_erase(command, state)
    live = _require_client(command.business_id, command.client_id, state)
    if not live.erased:
        return _decide_live(command, live, ids, category)
    # Erased: its personal fields may not be set again, and its postings' texts are
    # not kept (the account goes on, nameless).
    if isinstance(command, c.UpdateClient) and any(
        getattr(command, name) is not msgspec.UNSET for name in e.PROFILE_FIELDS
    ):
        raise Conflict("The client's personal data was erased.")
    return [erased(event) for event in _decide_live(command, live, ids, category)]


def _decide_live(
    command: c.ClientCommand,
    live: ClientState,
    ids: c.NewIds,
    category: CategoryState | None,
) -> list[e.LedgerEvent]:
    assert not isinstance(command, c.EraseClient)
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


def _decide_erase(
    command: c.EraseClient, state: ClientState | None
) -> list[e.LedgerEvent]:
    """Archived and deleted clients too; a second erasure changes nothing. A client
    whose events were written before personal data was sealed has no key to destroy:
    its personal fields are in its events as they are, and stay there."""
    if state is None or state.business_id != command.business_id:
        raise NotFound(f"Client {command.client_id} not found")
    if state.erased:
        return []
    if state.personal_key is None:
        raise Conflict(
            "The client's events were written before personal data was sealed:"
            " they hold its personal fields in plain text and cannot be erased."
        )
    return [e.ClientErased(client_id=state.client_id)]


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
