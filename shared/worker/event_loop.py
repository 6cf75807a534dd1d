"""The event loop a serving process runs on (LEDGER_EVENT_LOOP).

`uvloop` runs asyncio's loop on libuv, in C: the loop's own bookkeeping, the
transports' reads and writes and the timers cost less than in Python's selector
loop, which was a quarter of the API's CPU at concurrency 64. Measured with the
services of `make run` alternating three times on the same machine: 10-12% less CPU
per posting at concurrency 16 and 64, 7% at 1 (README, "Benchmark"). `asyncio`, the
standard loop, is kept as a fallback: the code and every test run on both (the
tests' in-process apps on asyncio's loop, the processes they start on uvloop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

Result = TypeVar("Result")


def run(coroutine: Coroutine[Any, Any, Result], event_loop: str) -> Result:
    """Run `coroutine` to completion on a new loop of the kind named, as asyncio.run
    does (and then close the loop)."""
    if event_loop == "uvloop":
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)
