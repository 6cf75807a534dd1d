"""A spreadsheet worker dies with the API process, even while busy (issue 9, part
2): when `make run` was stopped, an orphaned parse kept a core busy for minutes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.integration.scenarios import wait_until

# An "API process": a parse pool running one job that never ends by itself.
API_PROCESS = """
import asyncio, sys
from services.command_api.spreadsheets.parse_pool import ParsePool
from services.command_api.spreadsheets.worker_limits import WorkerLimits
from tests.support.busy_work import spin

async def main():
    pool = ParsePool(1, WorkerLimits(cpu_s=600, memory_mib=1024), timeout_s=600)
    await pool.run(spin, sys.argv[1].encode())

asyncio.run(main())
"""
ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting to be reaped has stopped running)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rpartition(")")[2].split()[0] not in ("Z", "X")


async def test_a_busy_worker_dies_when_the_api_process_is_killed(
    tmp_path: Path,
) -> None:
    """SIGKILL the process that owns a pool whose worker spins: the worker (whose CPU
    limit is 10 minutes away) is gone within seconds, through PR_SET_PDEATHSIG."""
    pid_file = tmp_path / "worker.pid"
    api = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        API_PROCESS,
        str(pid_file),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:

        async def started() -> bool:
            return pid_file.exists() and pid_file.read_text() != ""

        await wait_until(started, "the worker to start its job", timeout_s=30)
        worker = int(pid_file.read_text())
        assert alive(worker)
        api.send_signal(signal.SIGKILL)
        await api.wait()

        async def gone() -> bool:
            return not alive(worker)

        await wait_until(gone, "the worker to die with the API process", timeout_s=20)
    finally:
        if api.returncode is None:
            api.kill()
            await api.wait()
