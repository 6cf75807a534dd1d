"""The garbage collector's tuning for the processes that run long or hard: `ledger
api`, `relay`, `projector` and `replay`.

They allocate a few objects per request or event and free them at once (reference
counting does); the few cycles (asyncio's, aiohttp's) are still collected, later. At
CPython's default threshold the collector ran every 700 allocations, and its full
collections walked every object the process had imported. So what is imported at
start is frozen out of its reach (it lives until the process ends anyway), and it
runs a seventieth as often. In `ledger replay` this was 2.4 of 8 s of CPU per million
events; in the serving processes see the README's benchmark section.
"""

from __future__ import annotations

import gc

# Allocations between two young-generation collections (the default is 700).
GC_THRESHOLD = 50_000


def collect_less() -> None:
    """Freeze what is allocated now, and collect the young generation less often."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD)
