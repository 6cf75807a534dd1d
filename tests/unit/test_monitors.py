"""The monitors' rules (shared/monitors.py) over hand-made events: the edge rule, the
scopes, the figures, and the commands' refusals."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from shared import commands as c
from shared import events as e
from shared.domain import CategoryState, ClientState
from shared.errors import NotFound, ValidationFailed
from shared.monitors import (
    MonitorState,
    Watch,
    decide_create_monitor,
    decide_delete_monitor,
)

AT = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
BUSINESS = 7


class History:
    """Events of one business at increasing positions."""

    def __init__(self) -> None:
        self.position = 0

    def __call__(
        self, payload: e.LedgerEvent, stream_id: str = "client-1"
    ) -> e.Envelope:
        self.position += 1
        return e.Envelope(
            event_id=uuid.uuid4(),
            type=e.event_type(payload),
            business_id=BUSINESS,
            stream_id=stream_id,
            version=self.position,
            position=self.position,
            schema_version=1,
            recorded_at=AT,
            metadata=e.Metadata(correlation_id="c"),
            payload=payload,
            hash="h",
        )


def created(client_id: int, category_id: int = 1) -> e.ClientCreated:
    return e.ClientCreated(
        client_id=client_id,
        account_id=client_id,
        category_id=category_id,
        business_name="B",
    )


def posted(
    client_id: int, entry: e.EntryType, amount_minor: int
) -> e.TransactionPosted:
    return e.TransactionPosted(
        transaction_id=1,
        client_id=client_id,
        account_id=client_id,
        entry_type=entry,
        amount_minor=amount_minor,
        date=AT.date(),
    )


def monitor(**changes: object) -> e.MonitorCreated:
    fields: dict[str, object] = {
        "monitor_id": "m",
        "scope": "business",
        "figure": "balance",
        "condition": ">=",
        "threshold_minor": 100,
    }
    return e.MonitorCreated(**{**fields, **changes})  # type: ignore[arg-type]


def fired(watch: Watch, event: e.Envelope) -> list[tuple[int, int, int]]:
    return [(t.client_id, t.value_minor, t.position) for t in watch.observe(event)]


def test_a_line_fires_on_the_crossing_only_and_rearms_on_the_way_back() -> None:
    at = History()
    watch = Watch()
    watch.fold(at(created(1), "client-1"))  # before the monitor: folded quietly
    assert watch.observe(at(monitor(), "monitor-m")) == []
    steps = [
        ("debit", 99, []),
        ("debit", 1, [(1, 100, 4)]),
        ("debit", 5, []),
        ("credit", 6, []),
        ("debit", 1, [(1, 100, 7)]),
    ]
    for entry, amount, expected in steps:
        assert fired(watch, at(posted(1, entry, amount))) == expected  # type: ignore[arg-type]


def test_a_client_already_past_the_line_at_creation_does_not_fire() -> None:
    at = History()
    watch = Watch()
    watch.fold(at(created(1)))  # before the monitor: folded quietly
    watch.fold(at(posted(1, "debit", 500)))
    watch.observe(at(monitor(), "monitor-m"))
    assert fired(watch, at(posted(1, "debit", 1))) == []
    assert fired(watch, at(posted(1, "credit", 402))) == []
    assert fired(watch, at(posted(1, "debit", 2))) == [(1, 101, 6)]


def test_scopes_pick_their_clients_and_a_category_change_is_no_crossing() -> None:
    at = History()
    watch = Watch()
    for client_id, category_id in ((1, 1), (2, 2)):
        watch.fold(at(created(client_id, category_id), f"client-{client_id}"))
    watch.observe(at(monitor(monitor_id="c", scope="category", category_id=2)))
    watch.observe(at(monitor(monitor_id="k", scope="client", client_id=1)))
    triggers = watch.observe(at(posted(1, "debit", 100)))
    assert [t.monitor_id for t in triggers] == ["k"]
    triggers = watch.observe(at(posted(2, "debit", 100), "client-2"))
    assert [t.monitor_id for t in triggers] == ["c"]
    moved = e.ClientUpdated(client_id=1, category_id=2)
    assert watch.observe(at(moved)) == []


def test_deposits_and_reversals_move_their_own_figure() -> None:
    at = History()
    watch = Watch()
    watch.fold(at(created(1)))
    watch.observe(at(monitor(figure="deposit", condition="<=", threshold_minor=0)))
    deposit = e.DepositPosted(
        deposit_id=2,
        client_id=1,
        deposit_account_id=9,
        entry_type="debit",
        amount_minor=50,
        date=AT.date(),
    )
    assert fired(watch, at(deposit)) == []
    assert fired(watch, at(posted(1, "credit", 50))) == []  # the balance, not it
    reversal = e.DepositReversed(
        deposit_id=3,
        reversal_of=2,
        client_id=1,
        deposit_account_id=9,
        entry_type="credit",
        amount_minor=50,
        date=AT.date(),
    )
    assert fired(watch, at(reversal)) == [(1, 0, 5)]


def test_a_deleted_monitor_or_client_fires_no_more() -> None:
    at = History()
    watch = Watch()
    watch.observe(at(monitor(), "monitor-m"))
    watch.observe(at(created(1)))  # created after the monitor: observed
    watch.observe(at(created(2), "client-2"))
    watch.observe(at(e.ClientDeleted(client_id=2), "client-2"))
    assert fired(watch, at(posted(2, "debit", 100), "client-2")) == []
    watch.observe(at(e.MonitorDeleted(monitor_id="m"), "monitor-m"))
    assert fired(watch, at(posted(1, "debit", 100))) == []


def _client(business_id: int, deleted: bool = False) -> ClientState:
    return ClientState(
        client_id=1,
        business_id=business_id,
        account_id=1,
        category_id=1,
        created_at=AT,
        updated_at=AT,
        deleted=deleted,
    )


def test_a_monitor_of_a_missing_deleted_or_foreign_client_is_refused() -> None:
    command = c.CreateMonitor(
        business_id=BUSINESS, definition=monitor(scope="client", client_id=1)
    )
    for client in (None, _client(BUSINESS, deleted=True), _client(BUSINESS + 1)):
        with pytest.raises(ValidationFailed) as refused:
            decide_create_monitor(command, client, None)
        assert refused.value.errors == {
            "client_id": ["The selected client id is invalid."]
        }
    assert decide_create_monitor(command, _client(BUSINESS), None) == [
        command.definition
    ]


def test_a_monitor_of_a_foreign_category_is_refused() -> None:
    command = c.CreateMonitor(
        business_id=BUSINESS, definition=monitor(scope="category", category_id=3)
    )
    foreign = CategoryState(
        category_id=3,
        business_id=BUSINESS + 1,
        name="x",
        description="",
        created_at=AT,
    )
    with pytest.raises(ValidationFailed):
        decide_create_monitor(command, None, foreign)


def test_only_a_live_monitor_of_the_business_is_deleted() -> None:
    state = MonitorState(
        business_id=BUSINESS,
        version=1,
        last_hash="h",
        definition=monitor(),
        created_at=AT,
    )
    command = c.DeleteMonitor(business_id=BUSINESS, monitor_id="m")
    assert decide_delete_monitor(command, state) == [e.MonitorDeleted(monitor_id="m")]
    state.deleted = True
    for gone in (None, state):
        with pytest.raises(NotFound):
            decide_delete_monitor(command, gone)
