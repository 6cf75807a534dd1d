"""How long the end-to-end tests wait for what must become true, and the one loop that
waits: a check polled on a deadline, never a bare sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tests.support.environment import READ_YOUR_WRITES_TIMEOUT_S

START_DEADLINE_S = 60.0
# Below the supervisor's own 15 s SIGKILL deadline (services/cli/processes.py): stopping
# within it means every child ended on its SIGTERM instead of being killed.
STOP_DEADLINE_S = 10.0
CLI_DEADLINE_S = 60.0
# How long a helper waits for an accepted (202) write to become visible: several
# read-your-writes bounds, so that only a projector that stopped fails a test.
VISIBLE_DEADLINE_S = 6 * READ_YOUR_WRITES_TIMEOUT_S
POLL_S = 0.05


async def wait_until(
    check: Callable[[], Awaitable[bool]], deadline_s: float, what: str
) -> None:
    """Poll `check` until it is true; fail with `what` when the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {deadline_s} s: {what}")
        await asyncio.sleep(POLL_S)
