"""The ledger's rules for reversals, given events then a command: a reversal undoes
its posting once, is dated today or later, and never takes a deposit below zero."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from shared import commands as c
from shared import decide, domain
from shared import events as e
from shared.errors import Conflict, NotFound, ValidationFailed
from tests.unit.client_histories import (
    DAY,
    deposited,
    envelope,
    history,
    posted,
    reverse_deposit,
    reverse_transaction,
)


def test_reversing_a_debit_posts_a_credit_that_brings_the_balance_back() -> None:
    """A debit of 150.00 reversed: a transaction.reversed crediting 150.00 under a new
    id; both count in the totals (debit 150.00 + 40.00, credit 150.00), the balance is
    the 40.00 left, the original is marked reversed and the reversal names it."""
    state = history(posted("debit", 15_000), posted("debit", 4_000))
    [reversal] = decide.decide_client(
        reverse_transaction(15_000, reason="Posted twice"),
        state,
        c.NewIds(entry_id=90),
        None,
    )
    assert reversal == e.TransactionReversed(
        transaction_id=90,
        reversal_of=15_000,
        client_id=1,
        account_id=1000,
        entry_type="credit",
        amount_minor=15_000,
        date=DAY,
        reason="Posted twice",
    )
    state = domain.evolve_client(state, envelope(4, reversal))
    assert (state.debit_minor, state.credit_minor) == (19_000, 15_000)
    assert state.balance_minor == 4_000
    assert domain.running_total(state.balance_by_date, DAY) == 4_000
    assert state.transactions[15_000] == domain.Entry(
        entry_type="debit", amount_minor=15_000, date=DAY, reversed=True
    )
    assert state.transactions[90] == domain.Entry(
        entry_type="credit", amount_minor=15_000, date=DAY, reversal_of=15_000
    )
    assert not state.transactions[4_000].reversed


def test_reversing_a_credit_posts_a_debit() -> None:
    """A credit of 25.00 reversed is a debit of 25.00: the balance goes from -25.00
    back to 0 and total_debit shows the reversal."""
    state = history(posted("credit", 2_500))
    [reversal] = decide.decide_client(
        reverse_transaction(2_500), state, c.NewIds(entry_id=91), None
    )
    assert isinstance(reversal, e.TransactionReversed)
    assert (reversal.entry_type, reversal.amount_minor) == ("debit", 2_500)
    state = domain.evolve_client(state, envelope(3, reversal))
    assert (state.debit_minor, state.credit_minor, state.balance_minor) == (
        2_500,
        2_500,
        0,
    )


def test_a_transaction_is_reversed_only_once() -> None:
    """The second reversal of a transaction, decided on the state after the first,
    is a 409 naming the transaction."""
    state = history(posted("debit", 700))
    [first] = decide.decide_client(
        reverse_transaction(700), state, c.NewIds(entry_id=92), None
    )
    state = domain.evolve_client(state, envelope(3, first))
    with pytest.raises(Conflict) as refused:
        decide.decide_client(
            reverse_transaction(700), state, c.NewIds(entry_id=93), None
        )
    assert refused.value.message == "Transaction 700 has already been reversed"


def test_a_reversal_cannot_be_reversed() -> None:
    """Reversing the reversal entry itself is a 422 on transaction_id (post a new
    transaction instead), whether or not its original is reversed."""
    state = history(posted("debit", 700))
    [first] = decide.decide_client(
        reverse_transaction(700), state, c.NewIds(entry_id=92), None
    )
    state = domain.evolve_client(state, envelope(3, first))
    with pytest.raises(ValidationFailed) as refused:
        decide.decide_client(
            reverse_transaction(92), state, c.NewIds(entry_id=93), None
        )
    assert refused.value.errors == {
        "transaction_id": [
            "A reversal cannot be reversed; post a new transaction instead."
        ]
    }


def test_reversing_an_unknown_transaction_is_not_found() -> None:
    """An id not on this client's stream is a 404, and so is a deposit's id given as
    a transaction (and a transaction's id given as a deposit)."""
    state = history(posted("debit", 700), deposited("debit", 300))
    for command in (
        reverse_transaction(701),
        reverse_transaction(300),
        reverse_deposit(700),
    ):
        with pytest.raises(NotFound):
            decide.decide_client(command, state, c.NewIds(entry_id=94), None)


def test_a_reversal_is_dated_today_or_on_a_later_original_date() -> None:
    """A back-dated original is reversed today (its own line keeps its date); an
    original dated tomorrow is reversed on its own date, never before it."""
    old = posted("debit", 800, DAY - dt.timedelta(days=40))
    tomorrow = posted("credit", 900, DAY + dt.timedelta(days=1))
    state = history(old, tomorrow)
    [first] = decide.decide_client(
        reverse_transaction(800), state, c.NewIds(entry_id=95), None
    )
    [second] = decide.decide_client(
        reverse_transaction(900), state, c.NewIds(entry_id=96), None
    )
    assert isinstance(first, e.TransactionReversed)
    assert isinstance(second, e.TransactionReversed)
    assert (first.date, second.date) == (DAY, DAY + dt.timedelta(days=1))


def test_reversing_a_top_up_that_was_already_used_is_refused() -> None:
    """100.00 received, 60.00 used: reversing the 100.00 would leave -40.00, a 422;
    the deposit and the stream are unchanged by the refusal."""
    state = history(deposited("debit", 10_000), deposited("credit", 6_000))
    with pytest.raises(ValidationFailed) as refused:
        decide.decide_client(
            reverse_deposit(10_000), state, c.NewIds(entry_id=97), None
        )
    assert refused.value.errors == {
        "amount": ["The amount to reverse may not be greater than the deposit."]
    }
    assert state.deposit_minor == 4_000 and not state.deposits[10_000].reversed


def test_reversing_deposit_postings_moves_the_deposit_back() -> None:
    """Reversing the 60.00 use (a debit of 60.00 back) and then the 100.00 top-up (a
    credit of 100.00) leaves the deposit at exactly 0, on the same deposit account."""
    state = history(deposited("debit", 10_000), deposited("credit", 6_000))
    [back] = decide.decide_client(
        reverse_deposit(6_000), state, c.NewIds(entry_id=98), None
    )
    assert back == e.DepositReversed(
        deposit_id=98,
        reversal_of=6_000,
        client_id=1,
        deposit_account_id=2000,
        entry_type="debit",
        amount_minor=6_000,
        date=DAY,
    )
    state = domain.evolve_client(state, envelope(4, back))
    assert state.deposit_minor == 10_000
    [top_up] = decide.decide_client(
        reverse_deposit(10_000), state, c.NewIds(entry_id=99), None
    )
    state = domain.evolve_client(state, envelope(5, top_up))
    assert state.deposit_minor == 0
    assert state.deposits[10_000].reversed and state.deposits[99].reversal_of == 10_000


def test_evolve_refuses_a_second_reversal_of_the_same_posting() -> None:
    """decide refuses a second reversal; evolve asserts it again on what it reads."""
    reversal = e.TransactionReversed(
        transaction_id=90,
        reversal_of=700,
        client_id=1,
        account_id=1000,
        entry_type="credit",
        amount_minor=700,
        date=DAY,
    )
    state = history(posted("debit", 700), reversal)
    again = msgspec.structs.replace(reversal, transaction_id=91)
    with pytest.raises(AssertionError):
        domain.evolve_client(state, envelope(4, again))
