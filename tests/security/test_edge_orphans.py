"""A child of `ledger run` ends when its supervisor dies, even while it is busy.

The real `ledger run` is started, its API child is stopped with SIGSTOP (busier than
any busy loop: it cannot run one line of its own, neither its event loop nor a
watchdog thread), then the supervisor is killed with SIGKILL, so it stops nothing
itself. Every child must then be gone, checked on a deadline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp

from tests.e2e.deadlines import POLL_S, START_DEADLINE_S
from tests.e2e.supervisor import children_of, launch
from tests.support.environment import create_environment, drop_environment

GONE_DEADLINE_S = 30.0
ROLES = 5  # api, relay, projector, monitor, webhooks


def _alive(pid: int) -> bool:
    """Running or stopped; a zombie (dead, not yet reaped) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().rstrip("\0").split("\0")


async def _healthy(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def _wait_for(children: list[int], url: str, pid: int) -> list[int]:
    deadline = time.monotonic() + START_DEADLINE_S
    while not (await _healthy(url) and len(children_of(pid)) == ROLES):
        assert time.monotonic() < deadline, "`ledger run` did not start"
        await asyncio.sleep(POLL_S)
    children.extend(children_of(pid))
    return children


async def _wait_until_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + GONE_DEADLINE_S
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return  # the caller's assertion names the survivors
        await asyncio.sleep(POLL_S)


async def test_children_end_when_the_supervisor_is_killed_even_a_busy_one(
    servers: tuple[str, str], tmp_path: Path
) -> None:
    """Proves no orphan outlives `ledger run`: with its API child frozen by SIGSTOP,
    a SIGKILL of the supervisor leaves none of its three children alive."""
    environment = await create_environment(*servers, tag="orphans")
    service = launch(environment, tmp_path / "run.log")
    children: list[int] = []
    try:
        await _wait_for(children, service.base_url + "/healthz", service.process.pid)
        (api,) = [
            pid
            for pid in children
            if _command_line(pid)[-2:] == ["services.cli.main", "api"]
        ]
        os.kill(api, signal.SIGSTOP)
        service.process.kill()
        service.process.wait()
        await _wait_until_gone(children)
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        await drop_environment(environment)
