"""The serving processes' event loop (shared/worker/event_loop.py,
LEDGER_EVENT_LOOP)."""

from __future__ import annotations

import asyncio

import uvloop

from shared.config import load_settings
from shared.worker import event_loop


async def _loop_type() -> type:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


def test_the_default_is_uvloop_and_runs_the_coroutine_on_it() -> None:
    settings = load_settings({})
    assert settings.event_loop == "uvloop"
    assert event_loop.run(_loop_type(), settings.event_loop) is uvloop.Loop


def test_asyncio_runs_the_coroutine_on_python_s_own_loop() -> None:
    settings = load_settings({"LEDGER_EVENT_LOOP": "asyncio"})
    loop_type = event_loop.run(_loop_type(), settings.event_loop)
    assert issubclass(loop_type, asyncio.BaseEventLoop)
    assert not issubclass(loop_type, uvloop.Loop)
