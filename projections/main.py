"""`ledger projector --projection NAME`: run one projection until stopped."""

from __future__ import annotations

import asyncio

from projections.registry import PROJECTIONS
from projections.runner import Projector
from shared.config import Settings
from shared.worker.loop import run_until_stopped


async def run_projection(settings: Settings, name: str, stop: asyncio.Event) -> None:
    projector = Projector(settings, PROJECTIONS[name])
    await run_until_stopped(projector.run, stop)
