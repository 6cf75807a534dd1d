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
import msgspec
import pytest

from tests.e2e.deadlines import START_DEADLINE_S, STOP_DEADLINE_S, wait_until
from tests.e2e.ledger_api import Api, Reply
from tests.e2e.supervisor import (
    LedgerService,
    children_of,
    create_business,
    is_running,
    launch,
)
from tests.support.environment import (
    READ_YOUR_WRITES_TIMEOUT_S,
    create_environment,
    drop_environment,
)

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
    finish, by sending it while a query waits server-side (the read-your-writes bound)
    for an unreachable X-Ledger-Min-Position: the query still gets its 503 with
    Retry-After and JSON body after the full wait, the supervisor exits 0 and no child
    is left."""
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


ACKNOWLEDGED = (201, 202)
WRITERS = 8


async def _post_until_refused(
    api: Api, client_id: int, signalled: asyncio.Event, outcomes: list[Outcome]
) -> None:
    """Post debits one after another until the service refuses the connection."""
    while True:
        sent_after_signal = signalled.is_set()
        try:
            reply = await api.post(
                f"/api/v3/clients/{client_id}/transactions",
                {"type": "debit", "amount": "1.00"},
            )
        except aiohttp.ClientConnectionError as error:
            outcomes.append(Outcome(error=error, sent_after_signal=sent_after_signal))
            return
        outcomes.append(
            Outcome(
                reply=reply,
                sent_after_signal=sent_after_signal,
                answered_after_signal=signalled.is_set(),
            )
        )
        if reply.status not in ACKNOWLEDGED:
            return


class Outcome(msgspec.Struct, kw_only=True):
    reply: Reply | None = None
    error: BaseException | None = None
    sent_after_signal: bool = False
    answered_after_signal: bool = False


async def test_sigterm_loses_no_acknowledged_command(
    own_ledger: LedgerService, tmp_path: Path
) -> None:
    """Proves SIGTERM is graceful for writers, by posting debits from 8 concurrent
    writers and sending SIGTERM to `ledger run` mid-stream: every answer is a 2xx
    until the listener closes (then only connection errors, never a 5xx or a reset
    request that had been answered), requests in flight at the signal still get
    their 2xx, `ledger run` and every child exit 0 within the 10 s hang check, and
    each acknowledged debit is in the event store exactly once and in the statement
    after a restart."""
    business = await create_business(own_ledger)
    signalled = asyncio.Event()
    outcomes: list[Outcome] = []
    async with aiohttp.ClientSession(
        base_url=own_ledger.base_url, timeout=aiohttp.ClientTimeout(total=30)
    ) as http:
        api = Api(http, str(business["api_key"]))
        client_id = (await api.create_client())["id"]
        writers = [
            asyncio.ensure_future(
                _post_until_refused(api, client_id, signalled, outcomes)
            )
            for _ in range(WRITERS)
        ]

        async def flowing() -> bool:
            assert not any(writer.done() for writer in writers), outcomes[-1:]
            return len(outcomes) >= 40

        await wait_until(flowing, 30.0, "40 debits answered")
        own_ledger.process.send_signal(signal.SIGTERM)
        signalled.set()
        await asyncio.gather(*writers)
        try:
            returncode = await asyncio.to_thread(
                own_ledger.process.wait, STOP_DEADLINE_S
            )
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"`ledger run` did not stop within {STOP_DEADLINE_S} s of SIGTERM"
            ) from None

    assert returncode == 0, own_ledger.log_tail()
    answered = [outcome.reply for outcome in outcomes if outcome.reply is not None]
    assert {reply.status for reply in answered} <= set(ACKNOWLEDGED), [
        (reply.status, reply.body) for reply in answered
    ]
    refused = [outcome for outcome in outcomes if outcome.error is not None]
    assert len(refused) == WRITERS  # each writer ended on a refused connection
    # Requests sent before the signal and answered after it: in flight while the
    # service was stopping, and still answered 2xx.
    assert any(
        not outcome.sent_after_signal and outcome.answered_after_signal
        for outcome in outcomes
        if outcome.reply is not None
    )
    acknowledged = [int(reply.body["id"]) for reply in answered]
    assert len(acknowledged) == len(set(acknowledged))
    admin = await asyncpg.connect(own_ledger.environment.admin_url)
    try:
        stored = await admin.fetch(
            "SELECT (payload->>'transaction_id')::bigint AS id FROM events"
            " WHERE stream_id = $1 AND type = 'transaction.posted'",
            f"client-{client_id}",
        )
    finally:
        await admin.close()
    stored_ids = [row["id"] for row in stored]
    assert len(stored_ids) == len(set(stored_ids))
    assert set(acknowledged) <= set(stored_ids)

    await _assert_visible_after_restart(
        own_ledger, tmp_path, str(business["api_key"]), client_id, answered
    )


async def _assert_visible_after_restart(
    stopped: LedgerService,
    tmp_path: Path,
    key: str,
    client_id: int,
    answered: list[Reply],
) -> None:
    """Start `ledger run` again on the same database: the statement shows every
    acknowledged debit once the read models reach the last acknowledged position."""
    restarted = launch(stopped.environment, tmp_path / "ledger-restart.log")
    try:
        async with aiohttp.ClientSession(
            base_url=restarted.base_url, timeout=aiohttp.ClientTimeout(total=30)
        ) as http:

            async def answering() -> bool:
                assert restarted.process.poll() is None, restarted.log_tail()
                try:
                    async with http.get("/healthz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_until(answering, START_DEADLINE_S, "the restarted service")
            last = max(int(reply.headers["X-Ledger-Position"]) for reply in answered)

            async def statement() -> Reply | None:
                reply = await Api(http, key).get(
                    f"/api/v3/clients/{client_id}/transactions",
                    headers={"X-Ledger-Min-Position": str(last)},
                )
                return reply if reply.status == 200 else None

            found: list[Reply] = []

            async def reached() -> bool:
                reply = await statement()
                found[:] = [reply] if reply is not None else []
                return reply is not None

            await wait_until(reached, START_DEADLINE_S, "position reached")
    finally:
        if restarted.process.poll() is None:
            restarted.process.send_signal(signal.SIGTERM)
            returncode = await asyncio.to_thread(
                restarted.process.wait, STOP_DEADLINE_S
            )
            assert returncode == 0, restarted.log_tail()
    listed = {int(line["id"]) for line in found[0].body["transactions"]}
    assert {int(reply.body["id"]) for reply in answered} <= listed
