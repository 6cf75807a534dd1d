"""The workers of `ledger run` (relay, projector, monitor, webhooks), wired with the
openers of their connections (services/bootstrap.py), and run until stopped."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Sequence
from functools import partial

from projections.consumer import ATTEMPTS_MAX, RETRY_DELAY_S, Projector
from projections.registry import PROJECTIONS
from projections.runner import Projection
from services import bootstrap
from services.cli import worker_health
from services.cli.webhook_worker import wire_webhooks
from services.monitor.follower import Monitor, MonitorRunning, reset
from services.outbox_relay.relay import Relay
from shared.config import Settings
from shared.worker.loop import run_until_stopped

log = logging.getLogger("ledger.monitor")
__all__ = [
    "replay_monitor",
    "run_worker",
    "wire_monitor",
    "wire_projector",
    "wire_relay",
]


def wire_relay(settings: Settings) -> Relay:
    """The relay, with openers for its leader-lock, frames-lane and broker
    connections."""
    return Relay(
        settings,
        open_leader_connection=partial(bootstrap.relay_leader_connection, settings),
        open_frames_connection=partial(bootstrap.relay_frames_connection, settings),
        open_broker=partial(bootstrap.relay_broker, settings),
    )


def wire_projector(
    settings: Settings,
    projections: Sequence[Projection] = tuple(PROJECTIONS.values()),
    attempts_max: int = ATTEMPTS_MAX,
    retry_delay_s: float = RETRY_DELAY_S,
) -> Projector:
    """A projector (of every projection, unless a test names a few), with openers
    for its pool, its partition-claims connection and its broker connection."""
    return Projector(
        settings,
        projections,
        open_pool=partial(bootstrap.projector_pool, settings),
        open_claims=partial(bootstrap.partition_claims_connection, settings),
        open_broker=partial(bootstrap.projector_broker, settings),
        attempts_max=attempts_max,
        retry_delay_s=retry_delay_s,
    )


def wire_monitor(settings: Settings) -> Monitor:
    """The monitor process, with the opener of its connection."""
    return Monitor(
        settings.hmac_key.encode(),
        settings.monitor_poll_ms / 1000,
        partial(bootstrap.monitor_connection, settings),
    )


async def replay_monitor(settings: Settings) -> None:
    """`ledger monitor --replay`'s first step: forget the monitor's state, so the
    process decides every crossing again from the first event; exit 1 while another
    monitor process runs (stop it, or `ledger run`, first)."""
    conn = await bootstrap.monitor_connection(settings)
    try:
        await reset(conn)
    except MonitorRunning as refused:
        log.error("ledger monitor --replay: %s", refused)
        raise SystemExit(1) from None
    finally:
        await conn.close()


async def run_worker(settings: Settings, role: str, replay: bool = False) -> None:
    """Run the worker `role` names until SIGINT or SIGTERM (`replay`: the monitor's
    --replay)."""
    from shared import pause_points

    pause_points.arm(os.environ)  # test-only; inert unless LEDGER_TEST_PAUSE_AT
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with worker_health.serving(settings):
        if role == "relay":
            await run_until_stopped(wire_relay(settings).run, stop)
        elif role == "monitor":
            if replay:
                await replay_monitor(settings)
            await run_until_stopped(wire_monitor(settings).run, stop)
        elif role == "webhooks":
            await run_until_stopped(wire_webhooks(settings).run, stop)
        else:
            await run_until_stopped(wire_projector(settings).run, stop)
