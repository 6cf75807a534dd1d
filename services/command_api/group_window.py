"""The group-commit window: which commands waiting make the appender's next batch.

The first command waiting, and every one already in flight (they join after one turn
of the loop: no wait when nothing else is queued). Under load, when the last batch
had `from_batch` commands or more, the batch also gathers what arrives within
`seconds` (LEDGER_BATCH_WINDOW_S, LEDGER_BATCH_WINDOW_FROM). A batch pays per batch
for its commit, its relay read, publish and confirm, and the projectors' statement
and NOTIFY: at concurrency 16 and 64, gathering for 2 ms cut the CPU per posting by
about a quarter and the latency with it (README, "Benchmark"). Concurrency 1 never
waits: its batches are of one.
"""

from __future__ import annotations

import asyncio
import contextlib

import msgspec

from services.command_api.submissions import Submission


class Window(msgspec.Struct, frozen=True):
    """Once a batch has `from_batch` commands or more, the next one gathers commands
    for `seconds` before it commits (0: never)."""

    seconds: float = 0.0
    from_batch: int = 4


async def next_batch(
    queue: asyncio.Queue[Submission], size_max: int, window: Window, last: int
) -> list[Submission]:
    """The next batch from `queue` (at most `size_max`), `last` the size of the one
    before it."""
    batch = [await queue.get()]
    await asyncio.sleep(0)  # let the requests already in flight join
    if window.seconds > 0 and last >= window.from_batch:
        deadline = asyncio.get_running_loop().time() + window.seconds
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                while len(batch) < size_max:
                    batch.append(await queue.get())
    while len(batch) < size_max and not queue.empty():
        batch.append(queue.get_nowait())
    return batch
