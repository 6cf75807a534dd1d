"""`ledger relay`: run the relay until stopped; reconnect after failures."""

from __future__ import annotations

import asyncio

from services.outbox_relay.relay import Relay
from shared.config import Settings
from shared.worker.loop import run_until_stopped


async def run(settings: Settings, stop: asyncio.Event) -> None:
    relay = Relay(settings)
    await run_until_stopped(relay.run, stop)
