"""The one clock the service reads time through (UTC, always aware).

Every "now" and "today" of the command side goes through a Clock: the appender's
instant, which becomes each event's `recorded_at` and fixes the default date of a
posting and the date of a reversal, the routes' check of "at most tomorrow", the
import's instant and the export's file name. No code reads the local time zone: the
date of an instant is its UTC date, whatever `TZ` the process runs with.

Test-only: LEDGER_TEST_CLOCK_START (empty by default, and then inert) makes the clock
read that instant when the process starts and run on from there at the real pace, so
an end-to-end test can put a real `ledger run` on any day. In-process tests pass their
own Clock to `create_app` and the Appender, or call `set()`. Nothing in the HTTP API
can reach either.
"""

from __future__ import annotations

import datetime as dt
import re

# RFC 3339 with an offset, as `as_of` takes it: 2030-01-01T23:59:59.9Z, …+14:00.
_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})"
)


def parse_instant(text: str) -> dt.datetime | None:
    """The UTC instant an RFC 3339 timestamp with an offset names, or None."""
    if not _INSTANT.fullmatch(text):
        return None
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None


def _real_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Clock:
    """The real UTC time, or (tests) the real time shifted to start at an instant."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._offset = dt.timedelta(0)
        if start is not None:
            self.set(start)

    def set(self, instant: dt.datetime) -> None:
        """From now on read `instant`, then run on at the real pace (tests only)."""
        assert instant.tzinfo is not None, "a clock instant must carry its offset"
        self._offset = instant - _real_now()

    def now(self) -> dt.datetime:
        return _real_now() + self._offset

    def today(self) -> dt.date:
        """The UTC date of now: the calendar day every default date is taken from."""
        return self.now().date()


def clock_from(test_clock_start: str) -> Clock:
    """The process's clock: real time, unless the test-only start is set (checked
    at start by shared/setting_checks.py)."""
    if test_clock_start == "":
        return Clock()
    start = parse_instant(test_clock_start)
    assert start is not None, "LEDGER_TEST_CLOCK_START is checked at start"
    return Clock(start)
