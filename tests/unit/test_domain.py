"""The ledger's rules, given events then a command: pure decide() and evolve()."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import pytest

from shared import commands as c
from shared import domain
from shared import events as e
from shared.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed

AT = dt.datetime(2024, 11, 4, 16, 13, 37, 123456, tzinfo=dt.UTC)
DAY = dt.date(2024, 11, 4)
BUSINESS = 7


def envelope(
    version: int, payload: e.LedgerEvent, stream: str = "client-1"
) -> e.Envelope:
    return e.Envelope(
        event_id=uuid.uuid4(),
        type=e.event_type(payload),
        business_id=BUSINESS,
        stream_id=stream,
        version=version,
        position=version,
        schema_version=1,
        recorded_at=AT + dt.timedelta(seconds=version),
        metadata=e.Metadata(correlation_id="test"),
        payload=payload,
        hash=f"h{version}",
    )


def history(*payloads: e.LedgerEvent) -> domain.ClientState:
    created = e.ClientCreated(
        client_id=1, account_id=1000, category_id=3, business_name="Abas"
    )
    state = None
    for version, payload in enumerate((created, *payloads), start=1):
        state = domain.evolve_client(state, envelope(version, payload))
    assert state is not None
    return state


def posted(
    entry_type: e.EntryType, amount_minor: int, date: dt.date = DAY
) -> e.TransactionPosted:
    return e.TransactionPosted(
        transaction_id=amount_minor,
        client_id=1,
        account_id=1000,
        entry_type=entry_type,
        amount_minor=amount_minor,
        date=date,
    )


def deposited(entry_type: e.EntryType, amount_minor: int) -> e.DepositPosted:
    return e.DepositPosted(
        deposit_id=amount_minor,
        client_id=1,
        deposit_account_id=2000,
        entry_type=entry_type,
        amount_minor=amount_minor,
        date=DAY,
    )


def category(business_id: int = BUSINESS) -> domain.CategoryState:
    return domain.CategoryState(
        business_id=business_id,
        category_id=3,
        name="Class of 2021",
        description="",
        created_at=AT,
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
        domain.decide_client(command, state, c.NewIds(entry_id=9), None)
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
    [first] = domain.decide_client(
        command, state, c.NewIds(entry_id=5, deposit_account_id=77), None
    )
    assert isinstance(first, e.DepositPosted) and first.deposit_account_id == 77
    state = domain.evolve_client(state, envelope(2, first))
    [second] = domain.decide_client(
        command, state, c.NewIds(entry_id=6, deposit_account_id=78), None
    )
    assert isinstance(second, e.DepositPosted) and second.deposit_account_id == 77
    assert domain.evolve_client(state, envelope(3, second)).deposit_minor == 200


def test_a_client_with_a_balance_cannot_be_deleted() -> None:
    """Delete is refused (409) while the receivable balance is not zero."""
    state = history(posted("debit", 100))
    with pytest.raises(Conflict):
        domain.decide_client(
            c.DeleteClient(business_id=BUSINESS, client_id=1), state, c.NewIds(), None
        )


def test_a_client_with_a_deposit_cannot_be_deleted() -> None:
    """Delete is refused (409) while the deposit is not zero."""
    state = history(deposited("debit", 100))
    with pytest.raises(Conflict):
        domain.decide_client(
            c.DeleteClient(business_id=BUSINESS, client_id=1), state, c.NewIds(), None
        )


def test_a_settled_client_is_deleted_and_then_not_found() -> None:
    """A zero balance allows delete; after it every command answers 404."""
    state = history(posted("debit", 100), posted("credit", 100))
    [deleted] = domain.decide_client(
        c.DeleteClient(business_id=BUSINESS, client_id=1), state, c.NewIds(), None
    )
    state = domain.evolve_client(state, envelope(4, deleted))
    with pytest.raises(NotFound):
        domain.decide_client(
            c.SetArchived(business_id=BUSINESS, client_id=1), state, c.NewIds(), None
        )


def test_another_business_never_sees_the_client() -> None:
    """A command from another business is a 404, exactly like an unknown id."""
    with pytest.raises(NotFound):
        domain.decide_client(
            c.SetArchived(business_id=BUSINESS + 1, client_id=1),
            history(),
            c.NewIds(),
            None,
        )


def test_archive_without_a_value_toggles_and_with_one_sets() -> None:
    """No `archived` field toggles; the same value as now produces no event."""
    state = history()
    toggle = c.SetArchived(business_id=BUSINESS, client_id=1)
    [archived] = domain.decide_client(toggle, state, c.NewIds(), None)
    assert isinstance(archived, e.ClientArchived)
    state = domain.evolve_client(state, envelope(2, archived))
    assert state.archived and state.updated_at == AT + dt.timedelta(seconds=2)
    again = c.SetArchived(business_id=BUSINESS, client_id=1, archived=True)
    assert domain.decide_client(again, state, c.NewIds(), None) == []
    [unarchived] = domain.decide_client(toggle, state, c.NewIds(), None)
    assert isinstance(unarchived, e.ClientUnarchived)


def test_update_changes_only_the_given_fields() -> None:
    """Fields not given keep their values; created_at stays, updated_at moves."""
    state = history()
    update = c.UpdateClient(business_id=BUSINESS, client_id=1, first_name="Evans")
    [updated] = domain.decide_client(update, state, c.NewIds(), None)
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
        domain.decide_client(update, history(), c.NewIds(), None)


def test_a_client_needs_a_category_of_its_own_business() -> None:
    """An unknown category, or another business's, is a 422 on category_id."""
    create = c.CreateClient(business_id=BUSINESS, business_name="Tech", category_id=3)
    for found in (None, category(business_id=BUSINESS + 1)):
        with pytest.raises(ValidationFailed) as refused:
            domain.decide_create_client(
                create, c.NewIds(client_id=1, account_id=2), found
            )
        assert refused.value.errors == {
            "category_id": ["The selected category id is invalid."]
        }
    [created] = domain.decide_create_client(
        create, c.NewIds(client_id=1, account_id=2), category()
    )
    assert isinstance(created, e.ClientCreated) and created.account_id == 2


def test_a_taken_category_name_is_a_conflict() -> None:
    """Category names are unique per business: a taken one is a 409."""
    command = c.CreateCategory(business_id=BUSINESS, name="Class of 2021")
    with pytest.raises(Conflict):
        domain.decide_create_category(command, c.NewIds(category_id=4), name_taken=True)


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
        domain.decide_client(back_dated, state, c.NewIds(entry_id=9), None)
    same_day = msgspec.structs.replace(back_dated, date=DAY)
    [used] = domain.decide_client(same_day, state, c.NewIds(entry_id=9), None)
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


# --- reversals ------------------------------------------------------------------


def reverse_transaction(
    transaction_id: int, today: dt.date = DAY, reason: str = ""
) -> c.ReverseTransaction:
    return c.ReverseTransaction(
        business_id=BUSINESS,
        client_id=1,
        transaction_id=transaction_id,
        today=today,
        reason=reason,
    )


def reverse_deposit(deposit_id: int, today: dt.date = DAY) -> c.ReverseDeposit:
    return c.ReverseDeposit(
        business_id=BUSINESS, client_id=1, deposit_id=deposit_id, today=today
    )


def test_reversing_a_debit_posts_a_credit_that_brings_the_balance_back() -> None:
    """A debit of 150.00 reversed: a transaction.reversed crediting 150.00 under a new
    id; both count in the totals (debit 150.00 + 40.00, credit 150.00), the balance is
    the 40.00 left, the original is marked reversed and the reversal names it."""
    state = history(posted("debit", 15_000), posted("debit", 4_000))
    [reversal] = domain.decide_client(
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
    [reversal] = domain.decide_client(
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
    [first] = domain.decide_client(
        reverse_transaction(700), state, c.NewIds(entry_id=92), None
    )
    state = domain.evolve_client(state, envelope(3, first))
    with pytest.raises(Conflict) as refused:
        domain.decide_client(
            reverse_transaction(700), state, c.NewIds(entry_id=93), None
        )
    assert refused.value.message == "Transaction 700 has already been reversed"


def test_a_reversal_cannot_be_reversed() -> None:
    """Reversing the reversal entry itself is a 422 on transaction_id (post a new
    transaction instead), whether or not its original is reversed."""
    state = history(posted("debit", 700))
    [first] = domain.decide_client(
        reverse_transaction(700), state, c.NewIds(entry_id=92), None
    )
    state = domain.evolve_client(state, envelope(3, first))
    with pytest.raises(ValidationFailed) as refused:
        domain.decide_client(
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
            domain.decide_client(command, state, c.NewIds(entry_id=94), None)


def test_a_reversal_is_dated_today_or_on_a_later_original_date() -> None:
    """A back-dated original is reversed today (its own line keeps its date); an
    original dated tomorrow is reversed on its own date, never before it."""
    old = posted("debit", 800, DAY - dt.timedelta(days=40))
    tomorrow = posted("credit", 900, DAY + dt.timedelta(days=1))
    state = history(old, tomorrow)
    [first] = domain.decide_client(
        reverse_transaction(800), state, c.NewIds(entry_id=95), None
    )
    [second] = domain.decide_client(
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
        domain.decide_client(
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
    [back] = domain.decide_client(
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
    [top_up] = domain.decide_client(
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
