"""`ledger api` as a process, its stdout a pipe (as in a container): every line it
writes is one JSON object, with its start, each request and its stop."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.e2e.conftest import REPOSITORY, START_DEADLINE_S, STOP_DEADLINE_S, wait_until
from tests.support.environment import (
    Environment,
    create_environment,
    drop_environment,
    free_port,
    service_environment,
)


def _start_api(environment: dict[str, str]) -> subprocess.Popen[bytes]:
    """`ledger api` alone, stdout and stderr piped (a few lines: no pipe fills)."""
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "api"],
        cwd=REPOSITORY,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
async def api_environment(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    environment = await create_environment(*servers, tag="logs")
    yield environment
    await drop_environment(environment)


async def test_the_api_writes_one_json_object_per_line_to_a_pipe(
    api_environment: Environment,
) -> None:
    """Proves the log format and the request line in a real process, by starting
    `ledger api` at INFO with stdout piped, sending one request with X-Request-Id and
    stopping it with SIGTERM: it exits 0 and each stdout line parses as JSON, among
    them process.started, the request (route, status, request id) and
    process.stopped."""
    port = free_port()
    environment = service_environment(api_environment, port, log_level="INFO")
    process = _start_api(environment)
    try:
        async with aiohttp.ClientSession() as http:

            async def answered() -> bool:
                assert process.poll() is None
                try:
                    async with http.get(
                        f"http://127.0.0.1:{port}/healthz",
                        headers={"X-Request-Id": "probe-1"},
                    ) as response:
                        return response.headers["X-Request-Id"] == "probe-1"
                except aiohttp.ClientConnectionError:
                    return False

            await wait_until(answered, START_DEADLINE_S, "GET /healthz answers")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.to_thread(
            process.communicate, None, STOP_DEADLINE_S
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, stderr
    lines = [json.loads(line) for line in stdout.decode().splitlines()]
    events = [line.get("event") for line in lines]
    assert events[0] == "process.started"
    assert events[-1] == "process.stopped"
    requests = [line for line in lines if line.get("event") == "http.request"]
    assert requests[-1]["route"] == "/healthz"
    assert requests[-1]["status"] == 200
    assert requests[-1]["request_id"] == "probe-1"
    assert stderr == b""
