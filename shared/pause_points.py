"""Test-only pause points (hops 2, 4 and 5): hold a real `ledger api`, relay,
projector, monitor or webhooks process at a named moment, so that an end-to-end test
can SIGKILL it (or cut its database connection) exactly there instead of at a moment
of luck.

TEST-ONLY. `LEDGER_TEST_PAUSE_AT=<point>` is read once, when `ledger api`, `ledger
relay`, `ledger projector`, `ledger monitor` or `ledger webhooks` starts (`arm`);
unset, as in every deployment, each point is an immediate return. Nothing in the HTTP
API can set or reach it. The points:

- `api.before_commit`: a write's rows (an appender batch's or an import's) are
  inserted, its transaction still open (services/command_api/commit.py);
- `api.after_commit`: COMMIT has returned, no response is rendered or written yet;
- `relay.after_confirm`: a batch (messages and frames) is confirmed by the broker, the
  relay's cursor not yet saved;
- `projector.before_commit`: a batch's events are applied inside its transaction,
  not committed;
- `projector.after_commit`: the batch's transaction has committed, nothing is acked;
- `monitor.before_commit`: a batch's crossings are appended as monitor.triggered
  events, with its figures and cursor, inside its transaction, not committed;
- `webhooks.after_send`: a receiver has answered a delivery with a 2xx, the delivery
  row not yet marked delivered (services/webhooks/worker.py): the at-least-once
  window, where a crash makes the next worker send that delivery again.

The first command or batch with events to reach the armed point logs `test pause at
<point>` (the line a test waits for) and waits until the process receives SIGUSR1;
later ones pass.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping

from shared.config import SettingsError

log = logging.getLogger(__name__)
POINTS = (
    "api.before_commit",
    "api.after_commit",
    "relay.after_confirm",
    "projector.before_commit",
    "projector.after_commit",
    "monitor.before_commit",
    "webhooks.after_send",
)
_armed: list[str] = []  # the one point this process pauses at, until reached


def arm(environ: Mapping[str, str]) -> None:
    """Read LEDGER_TEST_PAUSE_AT once, at start; an unknown point stops the start."""
    point = environ.get("LEDGER_TEST_PAUSE_AT", "")
    if point == "":
        return
    if point not in POINTS:
        raise SettingsError(
            f"LEDGER_TEST_PAUSE_AT={point!r} is not one of {', '.join(POINTS)}"
        )
    _armed[:] = [point]


def disarm() -> None:
    """Pause nowhere (a test that armed a point in its own process, on its way out)."""
    _armed.clear()


def armed(point: str) -> bool:
    """Whether the process will pause at `point` (not reached yet)."""
    return point in _armed


async def pause(point: str) -> None:
    """Hold here until SIGUSR1 if the process was armed at `point` (once only)."""
    if point not in _armed:
        return
    _armed.clear()
    released = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, released.set)
    log.warning("test pause at %s", point)
    await released.wait()
    asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)
