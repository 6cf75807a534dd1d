"""Real `ledger api` processes (`python -m services.cli.main api`) for the crash and
concurrency tests: started on a free port against an environment, waited for until
/healthz answers, and SIGKILLed at the end of the test if still running.

Each process logs to its own file, so that a test can wait for the line a test-only
pause point writes (shared/pause_points.py) and show the log on failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import msgspec

from tests.e2e.deadlines import START_DEADLINE_S, wait_until
from tests.e2e.supervisor import REPOSITORY
from tests.support.environment import Environment, free_port, service_environment

# How long a test waits for a process to reach a pause point (a condition, not a bound
# on the service: the deadline only turns a hang into a failure).
PAUSE_DEADLINE_S = 30.0


class ApiProcess(msgspec.Struct, kw_only=True):
    """One running `ledger api` and what a test needs to reach it."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown code of the service runs."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def release(self) -> None:
        """Let the process go on from the pause point it waits at."""
        self.process.send_signal(signal.SIGUSR1)

    async def wait_for_log(self, text: str) -> None:
        async def logged() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"`ledger api` exited:\n{self.log()[-4000:]}")
            return text in self.log()

        await wait_until(logged, PAUSE_DEADLINE_S, f"the api log says {text!r}")


class ApiProcesses:
    """Starts `ledger api` processes for one test and kills any left at its end."""

    def __init__(self, log_directory: Path) -> None:
        self._log_directory = log_directory
        self._started: list[ApiProcess] = []

    async def start(
        self,
        environment: Environment,
        name: str,
        overrides: dict[str, str] | None = None,
    ) -> ApiProcess:
        port = free_port()
        env = service_environment(environment, port, "WARNING")
        env.update(overrides or {})
        api = ApiProcess(
            process=_spawn(env, self._log_directory / f"ledger-api-{name}.log"),
            base_url=f"http://127.0.0.1:{port}",
            log_path=self._log_directory / f"ledger-api-{name}.log",
        )
        self._started.append(api)
        await _wait_healthy(api)
        return api

    def stop_all(self) -> None:
        for api in self._started:
            if api.process.poll() is None:
                api.kill()


def _spawn(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`python -m services.cli.main api`, its output to `log_path`, in its own group."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "api"],
            cwd=REPOSITORY,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _wait_healthy(api: ApiProcess) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:

        async def healthy() -> bool:
            if api.process.poll() is not None:
                raise AssertionError(f"`ledger api` exited:\n{api.log()[-4000:]}")
            try:
                async with http.get(api.base_url + "/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await wait_until(healthy, START_DEADLINE_S, "`ledger api` answers /healthz")
