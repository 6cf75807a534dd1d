"""Ctrl-C on `ledger run`: the terminal signals the supervisor's whole process group,
and a request in flight still gets its full answer before everything exits 0.

This test stops a service, so it starts its own `ledger run` in an environment of its
own instead of the session's shared one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.e2e.conftest import (
    START_DEADLINE_S,
    STOP_DEADLINE_S,
    Api,
    LedgerService,
    children_of,
    create_business,
    is_running,
    launch,
    wait_until,
)
from tests.support.environment import (
    create_environment,
    drop_environment,
)

# The service's default read-your-writes bound: how long a query waits server-side
# for an X-Ledger-Min-Position before answering 503.
MIN_POSITION_WAIT_S = 5.0
UNREACHABLE_POSITION = "999999999999999"
NOT_YET = {"message": "The read models have not reached that position yet"}
# Only ProjectionWaiter.wait_for_position's checkpoint poll runs this SQL: a backend
# that ran it means the API is inside the slow request's handler.
CHECKPOINT_POLL = "%THEN min(position_last) END%"


@pytest.fixture
async def own_ledger(
    servers: tuple[str, str], tmp_path: Path
) -> AsyncIterator[LedgerService]:
    """`ledger run` on a free port against an environment of its own, answering
    /readyz; teardown kills whatever is left of it and drops the environment."""
    environment = await create_environment(*servers, tag="sigint")
    service = launch(environment, tmp_path / "ledger-run.log")
    process = service.process
    children: list[int] = []
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=5)
        ) as http:

            async def ready() -> bool:
                assert process.poll() is None, service.log_tail()
                children[:] = children_of(process.pid)
                try:
                    async with http.get(service.base_url + "/readyz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_until(ready, START_DEADLINE_S, "GET /readyz answers 200")
        yield service
    finally:
        try:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            for child in children_of(process.pid) + children:
                if is_running(child):
                    os.kill(child, signal.SIGKILL)
        finally:
            await drop_environment(environment)


async def test_ctrl_c_to_the_process_group_lets_an_in_flight_request_finish(
    own_ledger: LedgerService,
) -> None:
    """Proves Ctrl-C (SIGINT to the supervisor's process group) lets a slow request
    finish, by sending it while a query waits ~5 s server-side for an unreachable
    X-Ledger-Min-Position: the query still gets its 503 with Retry-After and JSON
    body after the full wait, the supervisor exits 0 and no child is left."""
    business = await create_business(own_ledger)
    children = children_of(own_ledger.process.pid)
    assert len(children) == 4  # api, relay, two projectors
    admin = await asyncpg.connect(own_ledger.environment.admin_url)
    try:
        async with aiohttp.ClientSession(
            base_url=own_ledger.base_url, timeout=aiohttp.ClientTimeout(total=30)
        ) as http:
            api = Api(http, str(business["api_key"]))
            started = time.monotonic()
            slow = asyncio.ensure_future(
                api.get(
                    "/api/v3/clients",
                    headers={"X-Ledger-Min-Position": UNREACHABLE_POSITION},
                )
            )

            async def in_flight() -> bool:
                assert not slow.done(), slow
                polls: int = await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE $1",
                    CHECKPOINT_POLL,
                )
                return polls > 0

            await wait_until(in_flight, 5.0, "the query to wait for its position")
            os.killpg(own_ledger.process.pid, signal.SIGINT)  # what Ctrl-C does
            reply = await slow
            waited = time.monotonic() - started
    finally:
        await admin.close()

    assert (reply.status, reply.body) == (503, NOT_YET), own_ledger.log_tail()
    assert reply.headers["Retry-After"] == "1"
    assert reply.headers["Content-Type"] == "application/json"
    assert MIN_POSITION_WAIT_S - 0.5 <= waited < MIN_POSITION_WAIT_S + 5
    try:
        returncode = await asyncio.to_thread(own_ledger.process.wait, STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"`ledger run` did not stop within {STOP_DEADLINE_S} s of SIGINT"
        ) from None
    assert returncode == 0, own_ledger.log_tail()
    assert [child for child in children if is_running(child)] == []


def _alive(pid: int) -> bool:
    """Running and not a zombie waiting for whoever adopted it to reap it."""
    status = Path(f"/proc/{pid}/status")
    if not is_running(pid) or not status.exists():
        return False
    return "\nState:\tZ" not in status.read_text()


async def test_children_stop_by_themselves_when_the_supervisor_is_killed(
    own_ledger: LedgerService,
) -> None:
    """Proves no process outlives a supervisor killed with SIGKILL (which can forward
    no signal), by killing the supervisor alone and waiting until its four children
    (API, relay, two projectors) have exited on their own."""
    children = children_of(own_ledger.process.pid)
    assert len(children) == 4

    os.kill(own_ledger.process.pid, signal.SIGKILL)
    own_ledger.process.wait()

    async def gone() -> bool:
        return not any(_alive(child) for child in children)

    await wait_until(gone, STOP_DEADLINE_S, "every child exited by itself")
