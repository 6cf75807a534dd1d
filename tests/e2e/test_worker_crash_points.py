"""Crashes at the named moment: a real relay or projector process is held at a
test-only pause point (LEDGER_TEST_PAUSE_AT, shared/pause_points.py) and SIGKILLed
there, then the figures are checked exactly.

- The relay between its broker confirms and its cursor save: at-least-once, and
  only the killed batch twice.
- A projector between its commit and its acks: the redelivered batch changes nothing
  in either projection.
- One of three projectors (each applying every projection) inside a batch's
  transaction: the survivors apply its partition in the relay's order.

Commands go through an in-process Appender (tests/e2e/worker_processes.py); the relay
and the projectors are `python -m services.cli.main` processes, as in a deployment.
Each runs on classic and on quorum queues (LEDGER_QUEUE_TYPE): on one local broker
that proves the quorum code path (declares, SAC, redelivery), not replication.
"""

from __future__ import annotations

import random
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from services.command_api.appender import Appender
from tests.e2e.deadlines import START_DEADLINE_S, wait_until
from tests.e2e.message_collector import collected_message_ids
from tests.e2e.worker_figures import (
    applied_order,
    assert_exact,
    caught_up,
    equals,
    event_ids_in_relay_order,
    relay_order,
)
from tests.e2e.worker_processes import (
    admin_connection,
    behind,
    checkpoints,
    clients_over_partitions,
    held_in_batch,
    killed_at_end,
    partitioned_environment,
    paused,
    post_round,
    projector,
    projector_log,
    ready_members,
    received_partitions,
    relayed,
    running_appender,
    sigkill,
    start_worker,
    three_members,
)
from tests.support.environment import Environment, free_port, service_environment

PARTITIONS = 3
BUSINESSES = 8  # business ids 1-8 fall in all three partitions
CLIENTS_EACH = 4
# Waits on the relay: it reads only below the oldest open transaction on the server,
# and other test sessions may hold one for a while.
CATCH_UP_DEADLINE_S = 120.0
# The held lane is the subscribers' (the frames lane, never held, saves its own).
SUBSCRIBERS_CURSOR = "SELECT count(*) FROM relay_cursor WHERE relay = 'main'"
RELAY_BATCH = 25


QUEUE_TYPES = ["classic", "quorum"]


@pytest.fixture(params=QUEUE_TYPES)
async def scaled(
    servers: tuple[str, str], request: pytest.FixtureRequest
) -> AsyncIterator[Environment]:
    """An environment of its own with three partitions, of each queue type."""
    async with partitioned_environment(
        servers, "crash", PARTITIONS, request.param
    ) as environment:
        yield environment


@pytest.fixture
async def appender(scaled: Environment) -> AsyncIterator[Appender]:
    async with running_appender(scaled) as appender:
        yield appender


@pytest.fixture
async def admin(scaled: Environment) -> AsyncIterator[asyncpg.Connection]:
    async with admin_connection(scaled) as conn:
        yield conn


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    with killed_at_end() as started:
        yield started


async def _relay_held_after_its_first_confirms(
    processes: list[subprocess.Popen[bytes]],
    env: dict[str, str],
    admin: asyncpg.Connection,
    received: list[str],
    log: Path,
) -> tuple[subprocess.Popen[bytes], list[str]]:
    """Start a relay held at relay.after_confirm; once it is held with its first batch
    confirmed, that batch (the first RELAY_BATCH events in the relay's order) is all
    the queue received and no cursor was saved. The held relay and its batch."""
    held = start_worker(
        processes,
        ["relay"],
        {**env, "LEDGER_TEST_PAUSE_AT": "relay.after_confirm"},
        log,
    )

    async def held_after_confirms() -> bool:
        return paused(held, log, "relay.after_confirm") and (
            len(received) == RELAY_BATCH
        )

    await wait_until(held_after_confirms, CATCH_UP_DEADLINE_S, "the relay held")
    killed_batch = (await event_ids_in_relay_order(admin))[:RELAY_BATCH]
    assert received == killed_batch
    assert await admin.fetchval(SUBSCRIBERS_CURSOR) == 0
    return held, killed_batch


def _start_projector_and_relay(
    processes: list[subprocess.Popen[bytes]], env: dict[str, str], logs: Path
) -> None:
    start_worker(processes, ["projector"], env, logs / "projector.log")
    start_worker(processes, ["relay"], env, logs / "relay.log")


async def test_a_relay_killed_between_confirms_and_cursor_republishes_only_that_batch(
    scaled: Environment,
    appender: Appender,
    admin: asyncpg.Connection,
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """A relay (3 partitions, batches of 25) is held after the broker confirmed its
    first batch and before save_cursor, and SIGKILLed there; a new relay publishes
    everything: a subscriber's queue holds every stored event once and exactly the
    killed batch's 25 twice, the store holds exactly the events posted, and both
    projections end exact to the cent (the duplicates skipped)."""
    env = service_environment(scaled, free_port(), log_level="INFO")
    env["LEDGER_RELAY_BATCH_SIZE_MAX"] = str(RELAY_BATCH)
    async with collected_message_ids(scaled.settings, "relay-crash") as received:
        clients, expected = await clients_over_partitions(
            scaled, appender, BUSINESSES, CLIENTS_EACH
        )
        rng = random.Random(10)
        await post_round(appender, clients, expected, rng)
        held, killed_batch = await _relay_held_after_its_first_confirms(
            processes, env, admin, received, tmp_path / "relay-held.log"
        )
        await post_round(appender, clients, expected, rng)
        sigkill(held)
        assert await admin.fetchval(SUBSCRIBERS_CURSOR) == 0
        _start_projector_and_relay(processes, env, tmp_path)
        await post_round(appender, clients, expected, rng)
        stored = await event_ids_in_relay_order(admin)

        async def all_published_and_applied() -> bool:
            return (
                len(received) >= len(stored) + RELAY_BATCH
                and await behind(admin, "balances") == 0
                and await behind(admin, "statements") == 0
            )

        await wait_until(all_published_and_applied, CATCH_UP_DEADLINE_S, "caught up")
        assert await relayed(admin) == await admin.fetchval(
            "SELECT max(position) FROM events"
        )
        assert Counter(received) == Counter(stored) + Counter(killed_batch)
        assert len(received) == len(stored) + RELAY_BATCH
    await assert_exact(admin, BUSINESSES, expected, 3)


@pytest.mark.parametrize("queue_type", QUEUE_TYPES)
async def test_a_projector_killed_between_commit_and_ack_skips_the_redelivered_batch(
    queue_type: str,
    servers: tuple[str, str],
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """With the clients projected, two rounds of postings wait in the queue; the
    projector commits its first batch of postings to both projections (one
    transaction) and is held before acking it, then SIGKILLed; RabbitMQ redelivers
    that batch to its restarted process, which skips it in both: every balance exact
    to the cent, every client exactly 3 statement lines, every tracking row of both
    projections at its stream's head, both checkpoints at the last position, nothing
    parked."""
    async with (
        partitioned_environment(servers, "crash", 1, queue_type) as environment,
        running_appender(environment) as appender,
        admin_connection(environment) as admin,
    ):
        env = service_environment(environment, free_port(), log_level="INFO")
        clients, expected = await clients_over_partitions(
            environment, appender, BUSINESSES, CLIENTS_EACH
        )
        start_worker(processes, ["relay"], env, tmp_path / "relay.log")
        first = projector(processes, env, tmp_path, "first")
        await wait_until(lambda: caught_up(admin), START_DEADLINE_S, "the clients")
        sigkill(first)
        rng = random.Random(20)
        for _ in range(2):
            await post_round(appender, clients, expected, rng)
        last = await admin.fetchval("SELECT max(position) FROM events")
        await wait_until(
            lambda: equals(relayed(admin), last), CATCH_UP_DEADLINE_S, "all relayed"
        )
        held = projector(processes, env, tmp_path, "held", "projector.after_commit")
        held_log = projector_log(tmp_path, "held")

        async def held_after_a_commit() -> bool:
            return paused(held, held_log, "projector.after_commit")

        await wait_until(
            held_after_a_commit, START_DEADLINE_S, "the projector held after a commit"
        )
        # The held batch is committed, to both projections, and carries postings.
        assert await admin.fetchval("SELECT count(*) FROM rm_transactions") > 0
        assert (
            await admin.fetchval(
                "SELECT sum(debit_minor + credit_minor) FROM rm_clients"
            )
            > 0
        )
        await post_round(appender, clients, expected, rng)
        sigkill(held)
        projector(processes, env, tmp_path, "restarted")
        await wait_until(lambda: caught_up(admin), CATCH_UP_DEADLINE_S, "the head")
        await assert_exact(admin, BUSINESSES, expected, 3)
        last = await admin.fetchval("SELECT max(position) FROM events")
        assert await checkpoints(admin) == {"balances": last, "statements": last}


async def test_a_projector_killed_inside_a_batch_leaves_each_statement_in_relay_order(
    scaled: Environment,
    appender: Appender,
    admin: asyncpg.Connection,
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """With the clients projected, three new projectors (each applying both
    projections) share the 3 partitions; one is held inside its first batch of
    postings' transaction (applied to both, not committed) while two more rounds are
    posted, and is SIGKILLed there; the survivors take its partition over and two
    more rounds follow. Each client's statement lines, in the order their
    transactions committed, carry the positions of its postings in the relay's order,
    strictly increasing; the store, balances, statements and both projections'
    tracking rows are exact."""
    env = service_environment(scaled, free_port(), log_level="INFO")
    clients, expected = await clients_over_partitions(
        scaled, appender, BUSINESSES, CLIENTS_EACH
    )
    start_worker(processes, ["relay"], env, tmp_path / "relay.log")
    first = await three_members(processes, env, admin, tmp_path / "first")
    await wait_until(lambda: caught_up(admin), START_DEADLINE_S, "clients")
    for process in first:
        sigkill(process)
    await wait_until(
        lambda: equals(ready_members(admin), {}),
        START_DEADLINE_S,
        "the killed members' claims released",
    )
    victim, *survivors = await three_members(
        processes, env, admin, tmp_path / "second", "projector.before_commit"
    )
    rng = random.Random(30)
    await post_round(appender, clients, expected, rng)
    await wait_until(
        lambda: held_in_batch(victim, tmp_path / "second-0.log"),
        START_DEADLINE_S,
        "the victim held inside a batch",
    )
    for _ in range(2):
        await post_round(appender, clients, expected, rng)
    sigkill(victim)
    for _ in range(2):
        await post_round(appender, clients, expected, rng)
    await wait_until(lambda: caught_up(admin), CATCH_UP_DEADLINE_S, "at the head")
    assert [survivor.poll() for survivor in survivors] == [None, None]
    assert received_partitions(tmp_path / "second-1.log") | received_partitions(
        tmp_path / "second-2.log"
    ) == {0, 1, 2}
    in_relay_order = await relay_order(admin, clients)
    assert await applied_order(admin) == in_relay_order
    for positions in in_relay_order.values():
        assert positions == sorted(set(positions))
    await assert_exact(admin, BUSINESSES, expected, 5)
