"""What each projection writes in one statement (projections/batch_statement.py):
postings summed per client for balances, lines for statements, and None for any
batch the general path must take."""

from __future__ import annotations

import datetime as dt

from projections.balances import projector as balances
from projections.statements import projector as statements
from shared import events as e
from shared.store.new_events import new_event
from tests.support.stored_events import RECORDED_AT, client_deleted

DAY = dt.date(2024, 11, 4)


def _stored(client_id: int, version: int, payload: e.Event) -> e.Envelope:
    return new_event(
        key=b"k",
        previous_hash="0" * 64,
        business_id=1,
        stream_id=e.client_stream(client_id),
        version=version,
        recorded_at=RECORDED_AT,
        metadata=e.Metadata(correlation_id=f"c{version}"),
        payload=payload,
    ).stored(position=100 + version)


def _debit(client_id: int, version: int, minor: int) -> e.Envelope:
    return _stored(
        client_id,
        version,
        e.TransactionPosted(
            transaction_id=version,
            client_id=client_id,
            account_id=client_id,
            entry_type="debit",
            amount_minor=minor,
            date=DAY,
            description=f"d{version}",
        ),
    )


def _deposit(client_id: int, version: int, minor: int) -> e.Envelope:
    return _stored(
        client_id,
        version,
        e.DepositPosted(
            deposit_id=version,
            client_id=client_id,
            deposit_account_id=70 + client_id,
            entry_type="credit",
            amount_minor=minor,
            date=DAY,
        ),
    )


def _reversal(client_id: int, version: int) -> e.Envelope:
    return _stored(
        client_id,
        version,
        e.TransactionReversed(
            transaction_id=version,
            reversal_of=1,
            client_id=client_id,
            account_id=client_id,
            entry_type="credit",
            amount_minor=5,
            date=DAY,
        ),
    )


def test_balances_sum_a_batch_of_postings_per_client_in_one_update() -> None:
    """Two debits of client 7 and a deposit credit of client 8: one UPDATE whose
    arrays hold each client's sums and last version; the deposit's account id;
    and a deposit credit counted as a negative deposit change."""
    events = [_debit(7, 2, 150), _deposit(8, 2, 40), _debit(7, 3, 25)]
    writes = balances.writes(events)
    assert writes is not None and len(writes) == 1
    assert writes[0].args == (
        [7, 8],
        [175, 0],
        [0, 0],
        [0, -40],
        [None, 78],
        [3, 2],
    )


def test_balances_leave_a_batch_with_another_event_to_the_general_path() -> None:
    assert (
        balances.writes(
            [_debit(7, 2, 1), client_deleted(business_id=1, client_id=9, position=120)]
        )
        is None
    )


def test_statements_insert_a_batch_s_lines_per_table() -> None:
    """A transaction line and a deposit line: one INSERT each, the columns as
    arrays in the table's column order."""
    writes = statements.writes([_debit(7, 2, 150), _deposit(8, 3, 40)])
    assert writes is not None
    assert [write.sql.split()[2] for write in writes] == [
        "rm_transactions",
        "rm_deposits",
    ]
    transaction, deposit = (write.args for write in writes)
    assert transaction == (
        [2],
        [1],
        [7],
        ["debit"],
        [150],
        [DAY],
        ["d2"],
        [RECORDED_AT],
        [102],
        [None],
        [""],
    )
    assert deposit == (
        [3],
        [1],
        [8],
        ["credit"],
        [40],
        [DAY],
        [""],
        [RECORDED_AT],
        [103],
        [None],
    )


def test_statements_leave_reversals_and_long_batches_to_the_general_path() -> None:
    """A reversal's UPDATE must see lines inserted before it (one statement sees
    one snapshot); more lines than an INSERT takes are COPYed; a batch without
    lines writes nothing but its bookkeeping."""
    assert statements.writes([_debit(7, 2, 1), _reversal(7, 3)]) is None
    many = [_debit(7, v, 1) for v in range(1, statements.COPY_FROM_LINES + 2)]
    assert statements.writes(many) is None
    assert statements.writes(many[:-1]) is not None
    deleted = client_deleted(business_id=1, client_id=9, position=120)
    assert statements.writes([deleted]) == []
