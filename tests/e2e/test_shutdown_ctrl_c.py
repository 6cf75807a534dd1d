"""Ctrl-C on `ledger run`: the terminal signals the supervisor's whole process group,
and a request in flight still gets its full answer before everything exits 0.

This test stops a service, so it runs its own `ledger run` (the `own_ledger` fixture)
in an environment of its own instead of the session's shared one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import aiohttp
import asyncpg

from tests.e2e.deadlines import STOP_DEADLINE_S, wait_until
from tests.e2e.ledger_api import Api
from tests.e2e.supervisor import (
    LedgerService,
    children_of,
    create_business,
    is_running,
)
from tests.support.environment import READ_YOUR_WRITES_TIMEOUT_S

UNREACHABLE_POSITION = "999999999999999"
NOT_YET = {"message": "The read models have not reached that position yet"}
# Only ProjectionWaiter.wait_for_position's checkpoint poll runs this SQL: a backend
# that ran it means the API is inside the slow request's handler.
CHECKPOINT_POLL = "%THEN min(position_last) END%"


async def test_ctrl_c_to_the_process_group_lets_an_in_flight_request_finish(
    own_ledger: LedgerService,
) -> None:
    """Proves Ctrl-C (SIGINT to the supervisor's process group) lets a slow request
    finish, by sending it while a query waits server-side (the read-your-writes bound)
    for an unreachable X-Ledger-Min-Position: the query still gets its 503 with
    Retry-After and JSON body after the full wait, the supervisor exits 0 and no child
    is left."""
    business = await create_business(own_ledger)
    children = children_of(own_ledger.process.pid)
    assert len(children) == 5  # api, relay, the projector, monitor, webhooks
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
    # The full wait, not cut short by the signal (a lower bound: a loaded machine
    # only adds); the client's 30 s timeout is what catches a hang.
    assert waited >= READ_YOUR_WRITES_TIMEOUT_S - 0.5
    try:
        returncode = await asyncio.to_thread(own_ledger.process.wait, STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"`ledger run` did not stop within {STOP_DEADLINE_S} s of SIGINT"
        ) from None
    assert returncode == 0, own_ledger.log_tail()
    assert [child for child in children if is_running(child)] == []
