"""`ledger relay` and `ledger projector` as their own processes, the way a container
runs each: with LEDGER_HEALTH_PORT set they answer the probes, and SIGTERM (what
Docker and Kubernetes send) stops them with exit code 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.deadlines import START_DEADLINE_S, STOP_DEADLINE_S, wait_until
from tests.e2e.supervisor import REPOSITORY
from tests.support.environment import (
    Environment,
    create_environment,
    drop_environment,
    free_port,
    service_environment,
)


@pytest.fixture(scope="module")
async def worker_environment(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    """A migrated environment of its own: no other relay or projector uses it."""
    environment = await create_environment(*servers, tag="probes")
    yield environment
    await drop_environment(environment)


def _start_worker(
    command: list[str], env: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """`python -m services.cli.main COMMAND`, as a container's `ledger COMMAND`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", *command],
            cwd=REPOSITORY,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.mark.parametrize("command", [["relay"], ["projector"]], ids=" ".join)
async def test_a_worker_answers_its_probes_and_stops_on_sigterm(
    worker_environment: Environment, command: list[str], tmp_path: Path
) -> None:
    """Proves the worker process serves /healthz, /readyz (200, PostgreSQL and
    RabbitMQ ok) and /metrics on its health port, then, after one SIGTERM, stops its
    work by itself (no warning: not cancelled after the grace) and exits 0 within the
    deadline."""
    health_port = free_port()
    env = service_environment(worker_environment, free_port())
    env["LEDGER_HEALTH_PORT"] = str(health_port)
    log_path = tmp_path / "worker.log"
    process = _start_worker(command, env, log_path)
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=5)
        ) as http:
            base = f"http://127.0.0.1:{health_port}"

            async def ready() -> bool:
                assert process.poll() is None, log_path.read_text()
                try:
                    async with http.get(f"{base}/readyz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_until(ready, START_DEADLINE_S, f"{command} answers /readyz")
            async with http.get(f"{base}/readyz") as response:
                assert await response.json() == {
                    "status": "ready",
                    "checks": {"postgres": "ok", "rabbitmq": "ok"},
                }
            async with http.get(f"{base}/healthz") as response:
                assert (response.status, await response.json()) == (
                    200,
                    {"status": "ok"},
                )
            async with http.get(f"{base}/metrics") as response:
                assert response.status == 200
                metrics = (await response.text()).splitlines()
            # Nothing to publish or apply in this environment: counters at zero.
            assert "ledger_relay_published_events_total 0.0" in metrics
            assert "# TYPE ledger_projection_applied_events_total counter" in metrics
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_DEADLINE_S) == 0, log_path.read_text()
        # The one SIGTERM stopped the work itself: a worker that ignored it is
        # cancelled after the stop grace (shared/worker/loop.py) with a warning, and
        # would still exit 0. At WARNING, nothing else is logged on the way out.
        assert log_path.read_text() == ""
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
