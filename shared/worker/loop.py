"""Keep a long-running worker (relay, projector) up until asked to stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)
Work = Callable[[asyncio.Event], Awaitable[None]]
STOP_GRACE_S = 5.0


async def run_until_stopped(
    work: Work, stop: asyncio.Event, restart_delay_s: float = 1.0
) -> None:
    """Run `work(stop)`; restart it after a failure; on stop, let it finish its batch.

    Work that has not returned STOP_GRACE_S after the stop (a standby relay waiting for
    the leader's lock) is cancelled.
    """
    while not stop.is_set():
        task = asyncio.ensure_future(work(stop))
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        try:
            await asyncio.wait_for(task, timeout=STOP_GRACE_S)
        except TimeoutError:
            log.warning("worker did not stop within %.0f s; cancelled", STOP_GRACE_S)
        except Exception:  # a process edge: log, wait, reconnect
            log.exception("worker failed; restarting in %.1f s", restart_delay_s)
            await asyncio.sleep(restart_delay_s)
