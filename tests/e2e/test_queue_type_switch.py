"""Switching LEDGER_QUEUE_TYPE from classic to quorum, and back, on a running setup
while postings go on (deploy/OPERATIONS.md, "Switching the queue type"): the relay and
the projector are `python -m services.cli.main` processes, SIGKILLed and started again
with the new setting; the figures are then checked exactly, as the crash tests do."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from projections.registry import QUEUES
from services.command_api.appender import Appender
from shared.bus import broker
from shared.bus.old_queues import existing
from shared.bus.partitions import queue_names
from shared.bus.queue_types import typed_name
from shared.config import Settings
from tests.e2e.deadlines import START_DEADLINE_S, wait_until
from tests.e2e.worker_figures import assert_exact, caught_up
from tests.e2e.worker_processes import (
    admin_connection,
    checkpoints,
    clients_over_partitions,
    killed_at_end,
    partitioned_environment,
    post_round,
    running_appender,
    sigkill,
    start_worker,
)
from tests.support.environment import free_port, service_environment

PARTITIONS = 3
BUSINESSES = 8  # business ids 1-8 fall in all three partitions
CLIENTS_EACH = 4
CATCH_UP_DEADLINE_S = 120.0
ROUND_PAUSE_S = 0.1  # pacing of the postings that go on during the switch


class Postings:
    """Rounds of postings (one to every client each) posted one after another in the
    background until stopped; `rounds` counts the ones done."""

    def __init__(self, appender: Appender, clients: list[tuple[int, int]]) -> None:
        self.appender = appender
        self.clients = clients
        self.expected: dict[int, list[int]] = {c: [0, 0] for _, c in clients}
        self.rounds = 0
        self.rng = random.Random(40)

    async def post(self) -> None:
        await post_round(self.appender, self.clients, self.expected, self.rng)
        self.rounds += 1

    @contextlib.asynccontextmanager
    async def going_on(self) -> AsyncIterator[None]:
        stop = asyncio.Event()

        async def loop() -> None:
            while not stop.is_set():
                await self.post()
                await asyncio.sleep(ROUND_PAUSE_S)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            stop.set()
            await task


async def _messages(settings: Settings, queue_type: str) -> list[int | None]:
    """Per partition queue of the type, its message count (None: no such queue)."""
    group = typed_name(QUEUES, queue_type)
    names = queue_names(settings.queue_prefix, group, settings.projection_partitions)
    connection = await broker.connect(settings.amqp_url)
    try:
        found = [await existing(connection, name) for name in names]
    finally:
        await connection.close()
    return [None if queue is None else queue.message_count for queue in found]


@pytest.mark.parametrize(
    ("before", "after"), [("classic", "quorum"), ("quorum", "classic")]
)
async def test_switching_the_queue_type_while_postings_go_on_loses_nothing(
    servers: tuple[str, str], tmp_path: Path, before: str, after: str
) -> None:
    """With 3 partitions on queues of one type, postings going on: the projector is
    SIGKILLed (frames build up in its queues, only there), the relay is SIGKILLed and
    a relay of the other type started (frames reach both queue sets), then a
    projector of the other type: it applies the old queues, deletes them, and
    consumes the new ones. Every balance and statement is exact to the cent (no
    posting lost, none applied twice), both projections' tracking rows at their
    streams' heads, every checkpoint at the last position, and no old queue is left.
    Back from quorum, the old queues are quorum queues with single-active-consumer,
    which refuse basic.get: they are drained through a consumer."""
    async with (
        partitioned_environment(servers, "switch", PARTITIONS, before) as environment,
        running_appender(environment) as appender,
        admin_connection(environment) as admin,
    ):
        settings = environment.settings
        old = service_environment(environment, free_port(), log_level="INFO")
        new = {**old, "LEDGER_QUEUE_TYPE": after}
        clients, _ = await clients_over_partitions(
            environment, appender, BUSINESSES, CLIENTS_EACH
        )
        postings = Postings(appender, clients)
        with killed_at_end() as processes:
            relay = start_worker(processes, ["relay"], old, tmp_path / "r-c.log")
            first = start_worker(processes, ["projector"], old, tmp_path / "p-c.log")
            await postings.post()
            await wait_until(lambda: caught_up(admin), START_DEADLINE_S, before)
            async with postings.going_on():
                sigkill(first)
                only_old = await _framed_unapplied(admin)
                sigkill(relay)
                start_worker(processes, ["relay"], new, tmp_path / "r-q.log")
                await _backlog(settings, after)
                new_log = tmp_path / "p-q.log"
                start_worker(processes, ["projector"], new, new_log)
                await wait_until(
                    lambda: _gone(settings, before), START_DEADLINE_S, "old queues gone"
                )
            await postings.post()  # through the new queues only
            await wait_until(lambda: caught_up(admin), CATCH_UP_DEADLINE_S, "head")
        # Events relayed after the old projector died and before the new
        # queues existed were in the old queues only: applied from there (and
        # more, if the new relay published them again).
        text = new_log.read_text()
        assert text.count("; deleted it") == PARTITIONS
        applied = re.findall(r"applied (\d+) events an earlier version left", text)
        assert sum(map(int, applied)) >= only_old > 0
        await assert_exact(admin, BUSINESSES, postings.expected, postings.rounds)
        last = await admin.fetchval("SELECT max(position) FROM events")
        # Each projection's, and its partitions' (`balances.0` …).
        assert set((await checkpoints(admin)).values()) == {last}


async def _framed_unapplied(admin: asyncpg.Connection) -> int:
    """Wait until the relay has framed postings the (dead) projector has not applied:
    they wait in its queues. How many events it has framed and balances has not
    applied, once it has."""

    async def count() -> int:
        unapplied: int = await admin.fetchval(
            "SELECT count(*) FROM events e LEFT JOIN projection_tracking t"
            " ON t.projection = 'balances' AND t.stream_id = e.stream_id"
            " WHERE e.version > coalesce(t.version, 0) AND e.position <="
            " (SELECT position FROM relay_cursor WHERE relay = 'frames')"
        )
        return unapplied

    async def some() -> bool:
        return await count() > 0

    await wait_until(some, START_DEADLINE_S, "postings framed, not applied")
    return await count()


async def _backlog(settings: Settings, queue_type: str) -> None:
    """Wait until each queue of the type holds messages no projector has taken."""

    async def held() -> bool:
        counts = await _messages(settings, queue_type)
        return all(count for count in counts)

    await wait_until(held, START_DEADLINE_S, f"a backlog in the {queue_type} queues")


async def _gone(settings: Settings, queue_type: str) -> bool:
    return await _messages(settings, queue_type) == [None] * PARTITIONS
