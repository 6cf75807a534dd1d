"""The id reserve (services/command_api/id_reserve.py): ids handed out in the order
drawn, the reserve first, refilled by reads once it would fall below half."""

from __future__ import annotations

from services.command_api.id_reserve import Drawn, IdReserve
from shared import commands as c

POSTING = c.PostTransaction(
    business_id=1, client_id=1, entry_type="debit", amount_minor=100
)
DEPOSIT = c.PostDeposit(business_id=1, client_id=1, entry_type="debit", amount_minor=1)
CREATION = c.CreateClient(business_id=1, business_name="Abas")


def entries(ids: c.DrawnIds, n: int) -> list[int]:
    return [ids.next_for(POSTING).entry_id for _ in range(n)]


def test_an_empty_reserve_gives_nothing_and_a_read_fills_it() -> None:
    reserve = IdReserve(entries=4, accounts=2)
    one = c.IdCounts(entries=1)
    assert reserve.take(one) is None

    to_draw = reserve.to_draw(one)

    assert to_draw == c.IdCounts(entries=5, accounts=2)
    ids = reserve.drawn(one, Drawn([], [101, 102], [], [1, 2, 3, 4, 5]))
    assert entries(ids, 1) == [1]
    taken = reserve.take(c.IdCounts(entries=3))
    assert taken is not None and entries(taken, 3) == [2, 3, 4]


def test_a_batch_beyond_the_reserve_takes_the_reserve_first_then_refills_it() -> None:
    reserve = IdReserve(entries=4, accounts=2)
    reserve.drawn(c.IdCounts(), Drawn([], [], [], [1, 2, 3]))
    two = c.IdCounts(entries=2)
    assert reserve.take(c.IdCounts(entries=4)) is None

    assert reserve.take(two) is not None  # 1, 2: one left, below half
    to_draw = reserve.to_draw(two)

    assert to_draw == c.IdCounts(entries=5, accounts=2)
    ids = reserve.drawn(two, Drawn([], [], [], [4, 5, 6, 7, 8]))
    assert entries(ids, 2) == [3, 4]
    rest = reserve.take(c.IdCounts(entries=4))
    assert rest is not None and entries(rest, 4) == [5, 6, 7, 8]


def test_a_reserve_at_half_or_more_draws_nothing_more() -> None:
    reserve = IdReserve(entries=4, accounts=2)
    reserve.drawn(c.IdCounts(), Drawn([], [7, 8], [], [1, 2, 3]))

    assert reserve.to_draw(c.IdCounts(entries=1, accounts=1)) == c.IdCounts()


def test_deposits_take_accounts_and_creations_never_come_from_the_reserve() -> None:
    reserve = IdReserve(entries=4, accounts=2)
    reserve.drawn(c.IdCounts(), Drawn([], [7, 8], [], [1, 2, 3, 4]))

    assert reserve.take(c.IdCounts(clients=1, accounts=1)) is None
    ids = reserve.take(c.IdCounts(entries=1, accounts=1))

    assert ids is not None
    assert ids.next_for(DEPOSIT) == c.NewIds(entry_id=1, deposit_account_id=7)
    creation = reserve.drawn(
        c.IdCounts(clients=1, accounts=1), Drawn([50], [9], [], [])
    )
    assert creation.next_for(CREATION) == c.NewIds(client_id=50, account_id=8)
