"""The projectors' `ledger_projected` payload (projections/applied_notice.py):
what the read-your-writes waiters are answered from."""

from __future__ import annotations

from projections.applied_notice import NOTIFY_BYTES_MAX, applied_payload


def test_the_payload_names_the_projection_then_each_stream_and_version() -> None:
    applied = {"client-7": 3, "category-2": 1}
    assert applied_payload("balances", applied) == "balances;client-7:3 category-2:1"


def test_streams_the_batch_left_at_their_known_version_are_not_listed() -> None:
    tracked = {"client-7": 3, "client-8": 2, "client-9": 1}
    known = {"client-7": 2, "client-8": 2}
    assert applied_payload("balances", tracked, known) == (
        "balances;client-7:3 client-9:1"
    )


def test_a_batch_without_streams_names_only_the_projection() -> None:
    assert applied_payload("statements", {}) == "statements;"


def test_streams_that_do_not_fit_under_the_notify_bound_are_left_out() -> None:
    """PostgreSQL refuses a payload of 8,000 bytes or more: 2,000 streams are cut at
    whole items, the first ones kept in order, `+` last, within NOTIFY_BYTES_MAX."""
    applied = {f"client-{number}": number for number in range(2_000)}
    payload = applied_payload("balances", applied)
    name, _, listed = payload.partition(";")
    *items, more = listed.split(" ")
    assert (name, more) == ("balances", "+")
    assert len(payload.encode()) <= NOTIFY_BYTES_MAX < 8_000
    assert items == [f"client-{n}:{n}" for n in range(len(items))]
    assert len(payload.encode()) + len(f" client-{len(items)}:{len(items)}") > (
        NOTIFY_BYTES_MAX - 2
    )
