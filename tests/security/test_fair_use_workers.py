"""The fold worker processes (services/http/fold_processes.py) do not outlive the API
process
that started them, even while busy with a fold."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web

from services.http.fold_processes import FOLD_PROCESSES, fold_processes_context
from shared.config import Settings
from tests.integration.scenarios import wait_until

REPOSITORY = Path(__file__).resolve().parents[2]
# An API process in miniature: the app's fold pool, one worker kept busy (a task
# that sleeps ten minutes), then it waits to be killed. It says "busy" in a file, not
# on a pipe: the worker inherits stdout, and a pipe it holds open would keep the
# parent's wait() from returning.
API_PROCESS = """
import asyncio, sys, time
from pathlib import Path
from aiohttp import web
from shared.config import Settings
from services.http.fold_processes import FOLD_PROCESSES, fold_processes_context

async def main():
    app = web.Application()
    await fold_processes_context(Settings())(app).__anext__()
    app[FOLD_PROCESSES].submit(time.sleep, 600)
    Path(sys.argv[1]).write_text("busy")
    await asyncio.sleep(600)

asyncio.run(main())
"""


def workers_of(pid: int) -> list[int]:
    """The multiprocessing workers among `pid`'s children (Linux /proc)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children if b"spawn_main" in _cmdline(child)]


def _cmdline(pid: str) -> bytes:
    """The process's command line; empty when it ended since it was listed."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def is_alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone while being read
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


async def test_a_busy_fold_worker_dies_with_its_api_process(tmp_path: Path) -> None:
    """Start a process holding the fold pool with one worker mid-task, SIGKILL it,
    and wait (on a deadline) until the worker is gone too: it would otherwise wait
    on its task queue for ever."""
    said = tmp_path / "said"
    api = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        API_PROCESS,
        str(said),
        cwd=REPOSITORY,
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:

        async def busy() -> bool:
            return said.exists() and len(workers_of(api.pid)) == 1

        await wait_until(busy, "the worker to start its task")
        [worker] = workers_of(api.pid)
        os.kill(api.pid, signal.SIGKILL)

        async def worker_gone() -> bool:
            return not is_alive(worker)

        try:
            await wait_until(worker_gone, "the worker to exit after its parent")
        finally:
            if is_alive(worker):  # the test failed: leave no orphan behind
                os.kill(worker, signal.SIGKILL)
    finally:
        if api.returncode is None and is_alive(api.pid):
            api.kill()
        await api.wait()


async def test_stopping_the_app_ends_a_busy_fold_worker() -> None:
    """Run the app's fold pool here with one worker mid-task (a ten-minute sleep),
    stop it as the app's cleanup does, and wait (on a deadline) until the worker is
    gone: a fold whose request is gone must not hold the process's exit."""
    others = set(workers_of(os.getpid()))  # other apps' pools in this session
    app = web.Application()
    context = fold_processes_context(Settings())(app)
    await context.__anext__()
    app[FOLD_PROCESSES].submit(time.sleep, 600)

    async def one_worker() -> bool:
        return len(set(workers_of(os.getpid())) - others) == 1

    await wait_until(one_worker, "the worker to start")
    [worker] = set(workers_of(os.getpid())) - others
    with pytest.raises(StopAsyncIteration):
        await context.__anext__()

    async def worker_gone() -> bool:
        return not is_alive(worker)

    await wait_until(worker_gone, "the worker to end with the pool")
