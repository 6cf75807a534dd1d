"""Stopping `ledger run`: SIGTERM loses no acknowledged command, and a supervisor
killed with SIGKILL leaves no child behind.

These tests stop a service, so each runs its own `ledger run` (the `own_ledger`
fixture) in an environment of its own instead of the session's shared one; Ctrl-C is
in test_shutdown_ctrl_c.py."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import aiohttp
import asyncpg
import msgspec

from tests.e2e.deadlines import START_DEADLINE_S, STOP_DEADLINE_S, wait_until
from tests.e2e.ledger_api import Api, Reply
from tests.e2e.supervisor import (
    LedgerService,
    children_of,
    create_business,
    is_running,
    launch,
)


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
    no signal), by killing the supervisor alone and waiting until its five children
    (API, relay, projector, monitor, webhooks) have exited on their own."""
    children = children_of(own_ledger.process.pid)
    assert len(children) == 5

    os.kill(own_ledger.process.pid, signal.SIGKILL)
    own_ledger.process.wait()

    async def gone() -> bool:
        return not any(_alive(child) for child in children)

    await wait_until(gone, STOP_DEADLINE_S, "every child exited by itself")


ACKNOWLEDGED = (201, 202)
WRITERS = 8


class Outcome(msgspec.Struct, kw_only=True):
    reply: Reply | None = None
    error: BaseException | None = None
    sent_after_signal: bool = False
    answered_after_signal: bool = False


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


async def _debits_until_sigterm(
    service: LedgerService, api: Api, client_id: int
) -> list[Outcome]:
    """Post debits from WRITERS concurrent writers, send SIGTERM to `ledger run` once
    40 are answered, and wait until every writer has ended and `ledger run` has
    exited 0 within the 10 s hang check: every writer's outcomes."""
    signalled = asyncio.Event()
    outcomes: list[Outcome] = []
    writers = [
        asyncio.ensure_future(_post_until_refused(api, client_id, signalled, outcomes))
        for _ in range(WRITERS)
    ]

    async def flowing() -> bool:
        assert not any(writer.done() for writer in writers), outcomes[-1:]
        return len(outcomes) >= 40

    await wait_until(flowing, 30.0, "40 debits answered")
    service.process.send_signal(signal.SIGTERM)
    signalled.set()
    await asyncio.gather(*writers)
    try:
        returncode = await asyncio.to_thread(service.process.wait, STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"`ledger run` did not stop within {STOP_DEADLINE_S} s of SIGTERM"
        ) from None
    assert returncode == 0, service.log_tail()
    return outcomes


def _answered_until_refused(outcomes: list[Outcome]) -> list[Reply]:
    """The answers, each a 2xx; each writer ended on a refused connection, and some
    request sent before the signal was answered after it (in flight while the service
    was stopping, and still answered 2xx)."""
    answered = [outcome.reply for outcome in outcomes if outcome.reply is not None]
    assert {reply.status for reply in answered} <= set(ACKNOWLEDGED), [
        (reply.status, reply.body) for reply in answered
    ]
    refused = [outcome for outcome in outcomes if outcome.error is not None]
    assert len(refused) == WRITERS  # each writer ended on a refused connection
    assert any(
        not outcome.sent_after_signal and outcome.answered_after_signal
        for outcome in outcomes
        if outcome.reply is not None
    )
    return answered


async def _stored_debit_ids(service: LedgerService, client_id: int) -> list[int]:
    """The transaction ids of the client's transaction.posted events in the store."""
    admin = await asyncpg.connect(service.environment.admin_url)
    try:
        stored = await admin.fetch(
            "SELECT (payload->>'transaction_id')::bigint AS id FROM events"
            " WHERE stream_id = $1 AND type = 'transaction.posted'",
            f"client-{client_id}",
        )
    finally:
        await admin.close()
    return [row["id"] for row in stored]


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
    business = await create_business(own_ledger)
    async with aiohttp.ClientSession(
        base_url=own_ledger.base_url, timeout=aiohttp.ClientTimeout(total=30)
    ) as http:
        api = Api(http, str(business["api_key"]))
        client_id = (await api.create_client())["id"]
        outcomes = await _debits_until_sigterm(own_ledger, api, client_id)

    answered = _answered_until_refused(outcomes)
    acknowledged = [int(reply.body["id"]) for reply in answered]
    assert len(acknowledged) == len(set(acknowledged))
    stored_ids = await _stored_debit_ids(own_ledger, client_id)
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
