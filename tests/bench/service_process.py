"""The service as the benchmarks run it: `python -m services.cli.main run` started the
way `make run` does on a throwaway environment, its output in a log file, waited for
until /readyz answers, and stopped with SIGINT (SIGKILL if it does not exit)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from tests.support.environment import Environment, service_environment

# The local servers, as in tests/conftest.py (DEFAULT_POSTGRES, DEFAULT_AMQP).
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/"

REPOSITORY = Path(__file__).resolve().parents[2]
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 30.0
POLL_S = 0.1


# Settings the bench passes on to the service when set in its own environment, e.g.
# LEDGER_BATCH_SIZE_MAX=1 to measure one transaction per command against group commit,
# or LEDGER_API_PROCESSES=2 to measure two API processes (default: `ledger run`'s,
# one per two cores).
TUNING = (
    "LEDGER_BATCH_SIZE_MAX",
    "LEDGER_API_PROCESSES",
    "LEDGER_REPLICA_POOL_SIZE_MAX",
)


def tuning() -> dict[str, str]:
    return {name: os.environ[name] for name in TUNING if name in os.environ}


def spawn_service(
    env: Environment, port: int, log_path: Path, overrides: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `python -m services.cli.main run` as `make run` does (its default API
    processes), its output going to `log_path` (with `overrides` in its
    environment)."""
    environment = service_environment(env, port, api_processes=None)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "run"],
            cwd=REPOSITORY,
            env={**environment, **tuning(), **(overrides or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a failed stop can end it alone
        )


@contextlib.asynccontextmanager
async def running_service(
    env: Environment, port: int, log_path: Path, overrides: dict[str, str] | None = None
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """`python -m services.cli.main run` until the block ends, then SIGINT (Ctrl-C)."""
    process = spawn_service(env, port, log_path, overrides)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(process.wait, STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            print(f"service: no exit {STOP_DEADLINE_S} s after SIGINT; killing it")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def wait_ready(
    http: aiohttp.ClientSession, process: subprocess.Popen[bytes], log_path: Path
) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"the service exited ({process.returncode}):\n{tail(log_path)}"
            )
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get("/readyz") as response:
                if response.status == 200:
                    return
        if time.monotonic() > deadline:
            raise RuntimeError(f"/readyz not 200 within {START_DEADLINE_S} s")
        await asyncio.sleep(POLL_S)


def tail(path: Path, characters: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-characters:]
    except OSError:
        return ""
