"""`ledger api` as a process, its stdout a pipe (as in a container): every line it
writes is one JSON object, with its start, each request and its stop, and nothing
else reaches its output, an import parsed in a worker process included."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest

from services.cli.businesses import provision_business
from tests.e2e.deadlines import START_DEADLINE_S, STOP_DEADLINE_S, wait_until
from tests.e2e.supervisor import REPOSITORY
from tests.support.environment import (
    Environment,
    create_environment,
    drop_environment,
    free_port,
    service_environment,
)
from tests.support.workbooks import HEADER, form, openpyxl_file


def _start_api(environment: dict[str, str]) -> subprocess.Popen[bytes]:
    """`ledger api` alone, stdout and stderr piped (a few lines: no pipe fills)."""
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "api"],
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


async def _probe_then_import(
    process: subprocess.Popen[bytes], port: int, api_key: str, sheet: bytes
) -> None:
    """GET /healthz with X-Request-Id "probe-1" until it answers, then import the
    sheet with `Prefer: respond-async`: a 202 that imported one client."""
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
        async with http.post(
            f"http://127.0.0.1:{port}/api/v3/clients/import",
            data=form(sheet),
            headers={
                "Authorization": f"Bearer {api_key}",
                "Prefer": "respond-async",
            },
        ) as response:
            imported = (response.status, (await response.json())["imported"])
        assert imported == (202, 1)


async def test_the_api_writes_one_json_object_per_line_to_a_pipe(
    api_environment: Environment,
) -> None:
    """Proves the log format and the request line in a real process, by starting
    `ledger api` at INFO with stdout piped, sending one request with X-Request-Id and
    stopping it with SIGTERM: it exits 0 and each stdout line parses as JSON, among
    them process.started, the request (route, status, request id) and
    process.stopped. An import sent meanwhile is parsed in a worker forked from the
    fork server, where multiprocessing re-runs the main module: stderr stays empty
    (it once got runpy's "found in sys.modules" warning on every import)."""
    business = await provision_business(api_environment.settings, "Logs Ltd")
    sheet = openpyxl_file([HEADER, ["Logged Ltd", "", "", "", 12.5]])
    port = free_port()
    environment = service_environment(api_environment, port, log_level="INFO")
    process = _start_api(environment)
    try:
        await _probe_then_import(process, port, str(business["api_key"]), sheet)
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
    probe = next(line for line in requests if line["request_id"] == "probe-1")
    assert (probe["route"], probe["status"]) == ("/healthz", 200)
    assert (requests[-1]["route"], requests[-1]["status"]) == (
        "/api/v3/clients/import",
        202,
    )
    assert stderr == b""
