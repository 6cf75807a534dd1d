"""The test-only pause points (shared/pause_points.py) of the API, the relay and the
projectors: inert unless armed, refused when misspelt (instead of silently never
pausing), and holding only the first arrival at the armed point."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest

from shared import pause_points
from shared.config import SettingsError


@pytest.fixture(autouse=True)
def disarmed() -> Iterator[None]:
    """Each test starts and ends with no point armed (the state is per process)."""
    pause_points._armed.clear()
    yield
    pause_points._armed.clear()


async def test_an_unarmed_point_returns_at_once() -> None:
    """Given no LEDGER_TEST_PAUSE_AT, as in every deployment, when a worker reaches
    each point, then it goes on (the call completes without waiting)."""
    pause_points.arm({})
    for point in pause_points.POINTS:
        await asyncio.wait_for(pause_points.pause(point), 5)
    assert pause_points._armed == []


def test_an_unknown_point_stops_the_start() -> None:
    """Given a misspelt point, when the worker starts, then arm raises the settings
    error naming the points there are (the CLI prints it and exits 2), and nothing is
    armed."""
    with pytest.raises(SettingsError) as refused:
        pause_points.arm({"LEDGER_TEST_PAUSE_AT": "relay.after_confrm"})
    assert str(refused.value) == (
        "LEDGER_TEST_PAUSE_AT='relay.after_confrm' is not one of"
        " api.before_commit, api.after_commit, relay.after_confirm,"
        " projector.before_commit, projector.after_commit, monitor.before_commit,"
        " webhooks.after_send"
    )
    assert pause_points._armed == []


def test_a_misspelt_api_point_is_refused_at_start() -> None:
    """Given LEDGER_TEST_PAUSE_AT=api.commit (no such point), arming raises the
    settings error naming the known points."""
    with pytest.raises(SettingsError) as raised:
        pause_points.arm({"LEDGER_TEST_PAUSE_AT": "api.commit"})
    assert str(raised.value) == (
        "LEDGER_TEST_PAUSE_AT='api.commit' is not one of api.before_commit,"
        " api.after_commit, relay.after_confirm, projector.before_commit,"
        " projector.after_commit, monitor.before_commit, webhooks.after_send"
    )


async def test_the_armed_point_holds_its_first_arrival_until_sigusr1(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Given the relay armed at relay.after_confirm, when it arrives there, then it
    logs the line tests wait for and holds (another point passes meanwhile) until
    SIGUSR1; a second arrival passes."""
    pause_points.arm({"LEDGER_TEST_PAUSE_AT": "relay.after_confirm"})
    held = asyncio.ensure_future(pause_points.pause("relay.after_confirm"))
    await _logged(caplog, "test pause at relay.after_confirm")
    await asyncio.wait_for(pause_points.pause("projector.after_commit"), 5)
    assert not held.done()
    os.kill(os.getpid(), signal.SIGUSR1)
    await asyncio.wait_for(held, 5)
    await asyncio.wait_for(pause_points.pause("relay.after_confirm"), 5)
    assert caplog.messages.count("test pause at relay.after_confirm") == 1


async def _logged(caplog: pytest.LogCaptureFixture, line: str) -> None:
    """Wait (up to 5 s) until `line` is logged."""
    for _ in range(500):
        if line in caplog.messages:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not logged within 5 s: {line}")
