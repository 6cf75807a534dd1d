"""The one clock (shared/clock.py), its test-only start setting, and how the appender
fills the dates a command leaves to the commit (commands.stamped)."""

from __future__ import annotations

import datetime as dt

import pytest

from shared import commands as c
from shared.clock import Clock, clock_from, parse_instant
from shared.config import SettingsError, load_settings

DAY = dt.date(2030, 1, 1)


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        (
            "2030-01-01T23:59:59.9Z",
            dt.datetime(2030, 1, 1, 23, 59, 59, 900_000, dt.UTC),
        ),
        ("2030-01-02T13:59:59+14:00", dt.datetime(2030, 1, 1, 23, 59, 59, 0, dt.UTC)),
        ("2029-12-31T16:00:00-08:00", dt.datetime(2030, 1, 1, 0, 0, 0, 0, dt.UTC)),
        ("2030-01-01", None),
        ("2030-01-01T12:00:00", None),
        ("2030-02-30T00:00:00Z", None),
        ("9999-12-31T23:59:59-01:00", None),
    ],
)
def test_an_instant_is_rfc3339_with_an_offset_read_in_utc(
    text: str, instant: dt.datetime | None
) -> None:
    """Given a timestamp, parse_instant answers its UTC instant, or None without an
    offset, for an impossible date, or beyond year 9999 in UTC."""
    assert parse_instant(text) == instant


def test_a_clock_set_to_an_instant_reads_it_then_runs_on_in_utc() -> None:
    """Given a clock started at 23:59:59.9 UTC, it reads that day and within seconds
    the next one, always aware and in UTC."""
    start = dt.datetime(2030, 1, 1, 23, 59, 59, 900_000, dt.UTC)
    clock = clock_from("2030-01-02T13:59:59.9+14:00")
    reading = clock.now()
    assert reading.tzinfo == dt.UTC
    assert start <= reading < start + dt.timedelta(seconds=5)
    clock.set(start + dt.timedelta(milliseconds=100))
    assert clock.today() == dt.date(2030, 1, 2)
    assert clock_from("").now().tzinfo == dt.UTC
    assert type(Clock()) is Clock


def test_a_bad_test_clock_start_refuses_to_start() -> None:
    """Given LEDGER_TEST_CLOCK_START without an offset, the process refuses to start
    with one line naming it; a good one is kept as given."""
    with pytest.raises(SettingsError) as refused:
        load_settings({"LEDGER_TEST_CLOCK_START": "2030-01-01T00:00:00"})
    assert str(refused.value) == (
        "LEDGER_TEST_CLOCK_START='2030-01-01T00:00:00' is not an RFC 3339 timestamp"
        " with an offset (2030-01-01T23:59:59.9Z), or empty for the real time"
    )
    settings = load_settings({"LEDGER_TEST_CLOCK_START": "2030-01-01T00:00:00Z"})
    assert settings.test_clock_start == "2030-01-01T00:00:00Z"


def test_stamping_fills_only_the_dates_left_to_the_commit() -> None:
    """Given undated postings and reversals, stamped() dates them with the commit's
    day; a posting's own date (or a reversal's) and other commands are kept."""
    undated = c.PostTransaction(
        business_id=1, client_id=2, entry_type="debit", amount_minor=5
    )
    assert c.stamped(undated, DAY).date == DAY
    dated = c.PostDeposit(
        business_id=1, client_id=2, entry_type="debit", amount_minor=5, date=DAY
    )
    assert c.stamped(dated, dt.date(2031, 5, 5)) == dated
    reversal = c.ReverseDeposit(business_id=1, client_id=2, deposit_id=3)
    assert c.stamped(reversal, DAY).today == DAY
    undo = c.ReverseTransaction(business_id=1, client_id=2, transaction_id=3)
    assert c.stamped(undo, DAY).today == DAY
    category = c.CreateCategory(business_id=1, name="A")
    assert c.stamped(category, DAY) is category
