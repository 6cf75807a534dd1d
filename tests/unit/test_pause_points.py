"""The test-only pause points: inert unless armed, and a misspelt point stops the
start instead of silently never pausing."""

from __future__ import annotations

import asyncio

import pytest

from services.command_api import pause_points
from shared.config import SettingsError

# Turns a pause that waits for a signal into a failure instead of a hang.
PAUSED_DEADLINE_S = 10.0


def test_an_unknown_pause_point_is_refused_at_start() -> None:
    """Given LEDGER_TEST_PAUSE_AT=api.commit (no such point), arming raises the
    settings error naming the known points."""
    with pytest.raises(SettingsError) as raised:
        pause_points.arm({"LEDGER_TEST_PAUSE_AT": "api.commit"})
    assert str(raised.value) == (
        "LEDGER_TEST_PAUSE_AT='api.commit' is not one of"
        " api.before_commit, api.after_commit"
    )


def test_pause_points_are_inert_when_not_armed() -> None:
    """Given no LEDGER_TEST_PAUSE_AT, both points return at once (the pause would
    otherwise wait for a SIGUSR1 that never comes)."""
    pause_points.arm({})

    async def both() -> None:
        for point in pause_points.POINTS:
            await pause_points.pause(point)

    asyncio.run(asyncio.wait_for(both(), PAUSED_DEADLINE_S))
