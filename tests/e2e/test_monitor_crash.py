"""The monitor process SIGKILLed at the named moment: a real `ledger monitor` is held
at `monitor.before_commit` (its batch's crossings appended as monitor.triggered
events, with its figures and cursor, inside the open transaction) and killed there;
a new process decides the batch again and records each crossing exactly once.

Commands go through an in-process Appender (tests/e2e/worker_processes.py); the
monitor is `python -m services.cli.main monitor`, as in a deployment.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from services.cli.businesses import provision_business
from services.command_api import renderers
from services.command_api.appender import Appender
from shared import commands as c
from shared import events as e
from tests.e2e.deadlines import START_DEADLINE_S, wait_until
from tests.e2e.worker_processes import (
    admin_connection,
    killed_at_end,
    partitioned_environment,
    paused,
    running_appender,
    sigkill,
    start_worker,
)
from tests.integration.monitor_calls import Trigger, monitored_to, triggers
from tests.integration.scenarios import create_client, metadata, submit, transaction
from tests.support.environment import Environment, free_port, service_environment

POINT = "monitor.before_commit"


@pytest.fixture
async def own(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    async with partitioned_environment(servers, "monitor", 1) as environment:
        yield environment


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    with killed_at_end() as started:
        yield started


async def _monitor(appender: Appender, business_id: int, client_id: int) -> str:
    """A monitor of the client's balance at >= 100.00, through the appender."""
    definition = e.MonitorCreated(
        monitor_id="5f0c4e9a-8d1b-4c2e-9a7f-3b6d2e1c0a99",
        scope="client",
        client_id=client_id,
        figure="balance",
        condition=">=",
        threshold_minor=10_000,
    )
    command = c.CreateMonitor(business_id=business_id, definition=definition)
    result = await appender.submit(command, metadata(), renderers.monitor)
    assert result.status == 201, result.body
    return definition.monitor_id


async def _position(
    appender: Appender, business_id: int, client: int, amount: int, entry: e.EntryType
) -> int:
    result = await submit(appender, transaction(business_id, client, amount, entry))
    assert result.position is not None
    return result.position


async def _crossings(
    appender: Appender, business_id: int
) -> tuple[int, str, list[int]]:
    """A monitored client crossing its line twice, another client (out of scope)
    past it too: the client, the monitor and the two crossings' positions."""
    first = await create_client(appender, business_id, "First")
    second = await create_client(appender, business_id, "Second")
    monitor = await _monitor(appender, business_id, first)
    crossed = [await _position(appender, business_id, first, 10_000, "debit")]
    await _position(appender, business_id, second, 50_000, "debit")
    await _position(appender, business_id, first, 1, "credit")
    crossed.append(await _position(appender, business_id, first, 1, "debit"))
    return first, monitor, crossed


async def test_a_monitor_killed_before_its_commit_records_each_crossing_once(
    own: Environment,
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """A monitor of one client's balance at >= 100.00: that client crosses, crosses
    back and crosses again, while another client (out of scope) passes the line too.
    The monitor process holds at its first batch with a crossing, the crossings
    appended but not committed, and is SIGKILLed: nothing of that batch shows. A new
    monitor process records the two crossings, each once, at their positions."""
    created = await provision_business(own.settings, "Monitored")
    business_id = int(created["business_id"])
    env = service_environment(own, free_port())
    async with running_appender(own) as appender:
        first, monitor, crossed = await _crossings(appender, business_id)
    log = tmp_path / "monitor-held.log"
    held = start_worker(
        processes, ["monitor"], {**env, "LEDGER_TEST_PAUSE_AT": POINT}, log
    )

    async def holding() -> bool:
        return paused(held, log, POINT)

    await wait_until(holding, START_DEADLINE_S, "the monitor held before commit")
    async with admin_connection(own) as admin:
        assert (
            await admin.fetchval(
                "SELECT count(*) FROM events WHERE type = 'monitor.triggered'"
            )
            == 0
        )
        assert await admin.fetchval("SELECT count(*) FROM monitor_triggers") == 0
        saved = await admin.fetchval(
            "SELECT position FROM relay_cursor WHERE relay = 'monitors'"
        )
        assert saved < crossed[0]  # the monitor's creation: a batch of its own
        sigkill(held)
        start_worker(processes, ["monitor"], env, tmp_path / "monitor.log")
        pool = await asyncpg.create_pool(own.admin_url, min_size=1, max_size=2)
        try:
            await monitored_to(pool, crossed[-1])
            assert await triggers(pool, monitor) == [
                Trigger(first, 10_000, crossed[0]),
                Trigger(first, 10_000, crossed[1]),
            ]
            assert (
                await admin.fetchval(
                    "SELECT count(*) FROM events WHERE type = 'monitor.triggered'"
                )
                == 2
            )
        finally:
            await pool.close()
