"""The ledger's rules, given events then a command: pure decide() and evolve()."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from shared import commands as c
from shared import decide, domain
from shared import events as e
from shared.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from tests.unit.client_histories import (
    AT,
    BUSINESS,
    DAY,
    category,
    deposited,
    envelope,
    history,
    posted,
)


def test_balance_is_total_debit_minus_total_credit() -> None:
    """The seed's totals give the seed's balance, to the cent."""
    state = history(posted("debit", 4322812029), posted("credit", 2287629737))
    assert (state.debit_minor, state.credit_minor) == (4322812029, 2287629737)
    assert state.balance_minor == 2035182292
    assert state.version == 3


def test_a_deposit_credit_beyond_the_deposit_is_refused() -> None:
    """Deposits never go below zero: using more than was prepaid is a 422."""
    state = history(deposited("debit", 500))
    command = c.PostDeposit(
        business_id=BUSINESS,
        client_id=1,
        entry_type="credit",
        amount_minor=501,
        date=DAY,
    )
    with pytest.raises(ValidationFailed) as refused:
        decide.decide_client(command, state, c.NewIds(entry_id=9), None)
    assert refused.value.errors == {
        "amount": ["The amount may not be greater than the deposit."]
    }


def test_the_first_deposit_opens_the_deposit_account_and_later_ones_reuse_it() -> None:
    """deposit_account_id comes from the ids drawn at the first deposit, then stays."""
    state = history()
    assert state.deposit_account_id is None
    command = c.PostDeposit(
        business_id=BUSINESS,
        client_id=1,
        entry_type="debit",
        amount_minor=100,
        date=DAY,
    )
    [first] = decide.decide_client(
        command, state, c.NewIds(entry_id=5, deposit_account_id=77), None
    )
    assert isinstance(first, e.DepositPosted) and first.deposit_account_id == 77
    state = domain.evolve_client(state, envelope(2, first))
    [second] = decide.decide_client(
        command, state, c.NewIds(entry_id=6, deposit_account_id=78), None
    )
    assert isinstance(second, e.DepositPosted) and second.deposit_account_id == 77
    assert domain.evolve_client(state, envelope(3, second)).deposit_minor == 200


def test_a_client_with_a_balance_cannot_be_deleted() -> None:
    """Delete is refused (409) while the receivable balance is not zero."""
    state = history(posted("debit", 100))
    with pytest.raises(Conflict):
        decide.decide_client(
            c.DeleteClient(business_id=BUSINESS, client_id=1), state, c.NewIds(), None
        )


def test_a_client_with_a_deposit_cannot_be_deleted() -> None:
    """Delete is refused (409) while the deposit is not zero."""
    state = history(deposited("debit", 100))
    with pytest.raises(Conflict):
        decide.decide_client(
            c.DeleteClient(business_id=BUSINESS, client_id=1), state, c.NewIds(), None
        )


def test_a_settled_client_is_deleted_and_then_not_found() -> None:
    """A zero balance allows delete; after it every command answers 404."""
    state = history(posted("debit", 100), posted("credit", 100))
    [deleted] = decide.decide_client(
        c.DeleteClient(business_id=BUSINESS, client_id=1), state, c.NewIds(), None
    )
    state = domain.evolve_client(state, envelope(4, deleted))
    with pytest.raises(NotFound):
        decide.decide_client(
            c.SetArchived(business_id=BUSINESS, client_id=1), state, c.NewIds(), None
        )


def test_another_business_never_sees_the_client() -> None:
    """A command from another business is a 404, exactly like an unknown id."""
    with pytest.raises(NotFound):
        decide.decide_client(
            c.SetArchived(business_id=BUSINESS + 1, client_id=1),
            history(),
            c.NewIds(),
            None,
        )


def test_archive_without_a_value_toggles_and_with_one_sets() -> None:
    """No `archived` field toggles; the same value as now produces no event."""
    state = history()
    toggle = c.SetArchived(business_id=BUSINESS, client_id=1)
    [archived] = decide.decide_client(toggle, state, c.NewIds(), None)
    assert isinstance(archived, e.ClientArchived)
    state = domain.evolve_client(state, envelope(2, archived))
    assert state.archived and state.updated_at == AT + dt.timedelta(seconds=2)
    again = c.SetArchived(business_id=BUSINESS, client_id=1, archived=True)
    assert decide.decide_client(again, state, c.NewIds(), None) == []
    [unarchived] = decide.decide_client(toggle, state, c.NewIds(), None)
    assert isinstance(unarchived, e.ClientUnarchived)


def test_update_changes_only_the_given_fields() -> None:
    """Fields not given keep their values; created_at stays, updated_at moves."""
    state = history()
    update = c.UpdateClient(business_id=BUSINESS, client_id=1, first_name="Evans")
    [updated] = decide.decide_client(update, state, c.NewIds(), None)
    assert updated == e.ClientUpdated(client_id=1, first_name="Evans")
    state = domain.evolve_client(state, envelope(2, updated))
    assert (state.first_name, state.business_name) == ("Evans", "Abas")
    assert state.created_at == AT + dt.timedelta(seconds=1)
    assert state.updated_at == AT + dt.timedelta(seconds=2)


def test_update_with_a_stale_version_is_a_precondition_failure() -> None:
    """If-Match carries the version read; any other version is a 412."""
    update = c.UpdateClient(
        business_id=BUSINESS, client_id=1, expected_version=5, first_name="X"
    )
    with pytest.raises(PreconditionFailed):
        decide.decide_client(update, history(), c.NewIds(), None)


def test_a_client_needs_a_category_of_its_own_business() -> None:
    """An unknown category, or another business's, is a 422 on category_id."""
    create = c.CreateClient(business_id=BUSINESS, business_name="Tech", category_id=3)
    for found in (None, category(business_id=BUSINESS + 1)):
        with pytest.raises(ValidationFailed) as refused:
            decide.decide_create_client(
                create, c.NewIds(client_id=1, account_id=2), found
            )
        assert refused.value.errors == {
            "category_id": ["The selected category id is invalid."]
        }
    [created] = decide.decide_create_client(
        create, c.NewIds(client_id=1, account_id=2), category()
    )
    assert isinstance(created, e.ClientCreated) and created.account_id == 2


def test_a_taken_category_name_is_a_conflict() -> None:
    """Category names are unique per business: a taken one is a 409."""
    command = c.CreateCategory(business_id=BUSINESS, name="Class of 2021")
    with pytest.raises(Conflict):
        decide.decide_create_category(command, c.NewIds(category_id=4), name_taken=True)


def test_running_total_counts_postings_dated_on_or_before_the_day() -> None:
    """A back-dated posting's running balance includes only earlier-dated postings."""
    state = history(
        posted("debit", 1000, dt.date(2024, 1, 10)),
        posted("debit", 500, dt.date(2024, 1, 20)),
        posted("credit", 200, dt.date(2024, 1, 5)),
    )
    assert domain.running_total(state.balance_by_date, dt.date(2024, 1, 5)) == -200
    assert domain.running_total(state.balance_by_date, dt.date(2024, 1, 10)) == 800
    assert domain.running_total(state.balance_by_date, dt.date(2024, 1, 31)) == 1300


def test_evolve_refuses_a_version_gap() -> None:
    """Versions must be contiguous: a skipped version is a bug, caught by assert."""
    with pytest.raises(AssertionError):
        domain.evolve_client(history(), envelope(5, posted("debit", 1)))


def test_a_back_dated_deposit_credit_cannot_use_money_not_yet_received() -> None:
    """100.00 received today cannot pay a credit dated before it arrived: the running
    deposit would be negative between those dates."""
    received = e.DepositPosted(
        deposit_id=1,
        client_id=1,
        deposit_account_id=2000,
        entry_type="debit",
        amount_minor=10_000,
        date=DAY,
    )
    state = history(received)
    back_dated = c.PostDeposit(
        business_id=BUSINESS,
        client_id=1,
        entry_type="credit",
        amount_minor=10_000,
        date=DAY - dt.timedelta(days=30),
    )
    with pytest.raises(ValidationFailed):
        decide.decide_client(back_dated, state, c.NewIds(entry_id=9), None)
    same_day = msgspec.structs.replace(back_dated, date=DAY)
    [used] = decide.decide_client(same_day, state, c.NewIds(entry_id=9), None)
    assert isinstance(used, e.DepositPosted) and used.amount_minor == 10_000


def test_lowest_running_total_looks_at_every_later_day() -> None:
    """A credit on day 1 is bounded by the lowest running total from day 1 on."""
    by_date = {
        dt.date(2024, 1, 1): 500,
        dt.date(2024, 1, 2): -400,
        dt.date(2024, 1, 3): 1_000,
    }
    assert domain.lowest_running_total(by_date, dt.date(2024, 1, 1)) == 100
    assert domain.lowest_running_total(by_date, dt.date(2024, 1, 3)) == 1_100
    assert domain.lowest_running_total(by_date, dt.date(2023, 12, 31)) == 0
