"""The group-commit window: which commands waiting make the appender's next batch.

The first command waiting, and every one already in flight (they join after one turn
of the loop: no wait when nothing else is queued). Under load, when the last batch
had `from_batch` commands or more and was taken less than RECENT_S ago, the batch
also gathers what arrives within `seconds` (LEDGER_BATCH_WINDOW_S,
LEDGER_BATCH_WINDOW_FROM). A batch pays per batch for its commit, its relay read,
publish and confirm, and the projectors' statement and NOTIFY: gathering for 2 ms
cut the CPU per posting by 13% at concurrency 64 and by 19% at 8 (README,
"Benchmark", the fifth step). Concurrency 1 never waits: its batches are of one.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import msgspec

from services.command_api.submissions import Submission

RECENT_S = 0.05  # a batch taken longer ago than this is not load


class Window(msgspec.Struct, frozen=True):
    """Once a batch has `from_batch` commands or more, the next one gathers commands
    for `seconds` before it commits (0: never)."""

    seconds: float = 0.0
    from_batch: int = 4


@dataclass
class Last:
    """The batch taken last: its size and when (the loop's clock)."""

    size: int = 0
    at: float = 0.0


async def next_batch(
    queue: asyncio.Queue[Submission],
    size_max: int,
    window: Window,
    last: Last,
    batch: list[Submission],
) -> None:
    """Take the next batch from `queue` into `batch` (at most `size_max`), and note it
    in `last`. What is taken is in `batch` at once, should the taking be cancelled."""
    batch.append(await queue.get())
    await asyncio.sleep(0)  # let the requests already in flight join
    loop = asyncio.get_running_loop()
    busy = last.size >= window.from_batch and loop.time() - last.at < RECENT_S
    if window.seconds > 0 and busy:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(loop.time() + window.seconds):
                while len(batch) < size_max:
                    batch.append(await queue.get())
    while len(batch) < size_max and not queue.empty():
        batch.append(queue.get_nowait())
    last.size, last.at = len(batch), loop.time()
