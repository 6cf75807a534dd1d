"""The group-commit window (services/command_api/group_window.py): no wait unless the
last batch was large and recent; then what arrives within the window joins, until the
batch is full."""

from __future__ import annotations

import asyncio
from typing import Any

from services.command_api.group_window import RECENT_S, Last, Window, next_batch

WINDOW = Window(seconds=0.5, from_batch=4)


def _queue(*items: str) -> asyncio.Queue[Any]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    return queue


def _last(size: int, ago_s: float = 0.0) -> Last:
    return Last(size, asyncio.get_running_loop().time() - ago_s)


async def _next(
    queue: asyncio.Queue[Any], size_max: int, window: Window, last: Last
) -> list[Any]:
    batch: list[Any] = []
    await next_batch(queue, size_max, window, last, batch)
    return batch


async def test_after_a_small_batch_only_what_is_waiting_is_taken() -> None:
    queue = _queue("a", "b")
    asyncio.get_running_loop().call_later(0.01, queue.put_nowait, "late")
    last = _last(3)

    assert await _next(queue, 500, WINDOW, last) == ["a", "b"]
    assert last.size == 2
    assert await queue.get() == "late"


async def test_after_a_large_batch_what_arrives_within_the_window_joins() -> None:
    queue = _queue("a")
    asyncio.get_running_loop().call_later(0.01, queue.put_nowait, "late")

    assert await _next(queue, 500, WINDOW, _last(4)) == ["a", "late"]


async def test_after_a_quiet_spell_a_large_batch_no_longer_counts() -> None:
    queue = _queue("a")
    asyncio.get_running_loop().call_later(0.01, queue.put_nowait, "late")

    assert await _next(queue, 500, WINDOW, _last(100, ago_s=RECENT_S + 1)) == ["a"]
    assert await queue.get() == "late"


async def test_a_full_batch_ends_the_window_and_a_zero_window_never_waits() -> None:
    queue = _queue("a")
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, queue.put_nowait, "b")
    loop.call_later(0.02, queue.put_nowait, "c")
    started = loop.time()

    long = Window(seconds=5.0, from_batch=4)
    assert await _next(queue, 2, long, _last(100)) == ["a", "b"]
    assert loop.time() - started < long.seconds  # ended by the size, not the time
    assert await _next(queue, 500, Window(0.0, 4), _last(100)) == ["c"]
