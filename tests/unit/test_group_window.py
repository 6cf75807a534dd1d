"""The group-commit window (services/command_api/group_window.py): no wait unless the
last batch was large; then what arrives within the window joins, until the batch is
full."""

from __future__ import annotations

import asyncio
from typing import Any

from services.command_api.group_window import Window, next_batch

WINDOW = Window(seconds=0.5, from_batch=4)


def _queue(*items: str) -> asyncio.Queue[Any]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    return queue


async def test_after_a_small_batch_only_what_is_waiting_is_taken() -> None:
    queue = _queue("a", "b")
    asyncio.get_running_loop().call_later(0.01, queue.put_nowait, "late")

    assert await next_batch(queue, 500, WINDOW, last=3) == ["a", "b"]
    assert queue.qsize() == 0
    assert await queue.get() == "late"


async def test_after_a_large_batch_what_arrives_within_the_window_joins() -> None:
    queue = _queue("a")
    asyncio.get_running_loop().call_later(0.01, queue.put_nowait, "late")

    assert await next_batch(queue, 500, WINDOW, last=4) == ["a", "late"]


async def test_a_full_batch_ends_the_window_and_a_zero_window_never_waits() -> None:
    queue = _queue("a")
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, queue.put_nowait, "b")
    loop.call_later(0.02, queue.put_nowait, "c")
    started = loop.time()

    long = Window(seconds=5.0, from_batch=4)
    assert await next_batch(queue, 2, long, last=100) == ["a", "b"]
    assert loop.time() - started < long.seconds  # ended by the size, not the time
    assert await next_batch(queue, 500, Window(0.0, 4), last=100) == ["c"]
