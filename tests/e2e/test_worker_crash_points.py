"""Crashes at the named moment: a real relay or projector process is held at a
test-only pause point (LEDGER_TEST_PAUSE_AT, shared/pause_points.py) and SIGKILLed
there, then the figures are checked exactly.

- The relay between its broker confirms and its cursor save: at-least-once, and
  only the killed batch twice.
- A projector between its commit and its acks: the redelivered batch changes nothing.
- One of three projectors inside a batch's transaction: the survivors apply its
  partition in the relay's order.

Commands go through an in-process Appender (tests/e2e/worker_processes.py); the relay
and the projectors are `python -m services.cli` processes, as in a deployment.
"""

from __future__ import annotations

import random
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from services.businesses import provision_business
from services.command_api.appender import Appender
from shared.partitions import business_slot, partition_of_slot
from tests.e2e.conftest import START_DEADLINE_S, wait_until
from tests.e2e.worker_processes import (
    admin_connection,
    behind,
    checkpoints,
    killed_at_end,
    partitioned_environment,
    post_round,
    relayed,
    running_appender,
    sigkill,
    start_worker,
)
from tests.integration.scenarios import create_client, id_of
from tests.support.environment import Environment, free_port, service_environment

PARTITIONS = 3
BUSINESSES = 8  # business ids 1-8 fall in all three partitions
CLIENTS_PER_BUSINESS = 4
CATCH_UP_DEADLINE_S = 120.0
RELAY_BATCH = 25
PAUSE_LINE = "test pause at "


@pytest.fixture
async def scaled(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    """An environment of its own with three partitions per projection."""
    async with partitioned_environment(servers, "crash", PARTITIONS) as environment:
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


async def _clients(
    environment: Environment, appender: Appender
) -> tuple[list[tuple[int, int]], dict[int, list[int]]]:
    """(business, client) pairs over all the partitions, and their [debit, credit]
    figures, all zero."""
    businesses = [
        id_of(await provision_business(environment.settings, f"Crash {index}"))
        for index in range(BUSINESSES)
    ]
    partitions = environment.settings.projection_partitions
    assert {
        partition_of_slot(business_slot(business_id), partitions)
        for business_id in businesses
    } == set(range(partitions))
    clients = [
        (business_id, await create_client(appender, business_id, f"Client {index}"))
        for business_id in businesses
        for index in range(CLIENTS_PER_BUSINESS)
    ]
    return clients, {client_id: [0, 0] for _, client_id in clients}


def _paused(process: subprocess.Popen[bytes], log_path: Path, point: str) -> bool:
    """True once the process logged that it holds at `point`."""
    text = log_path.read_text(errors="replace")
    assert process.poll() is None, text
    return f"{PAUSE_LINE}{point}" in text


async def _event_ids_in_relay_order(admin: asyncpg.Connection) -> list[str]:
    """Every stored event id in the relay's order (event_store.read_after's)."""
    rows = await admin.fetch(
        "SELECT event_id FROM events ORDER BY transaction_id, position"
    )
    return [str(row["event_id"]) for row in rows]


async def _stored_counts(admin: asyncpg.Connection) -> dict[str, int]:
    rows = await admin.fetch("SELECT type, count(*) AS n FROM events GROUP BY type")
    return {row["type"]: int(row["n"]) for row in rows}


async def _balances(admin: asyncpg.Connection) -> dict[int, list[int]]:
    rows = await admin.fetch(
        "SELECT client_id, debit_minor, credit_minor FROM rm_clients"
    )
    return {
        row["client_id"]: [int(row["debit_minor"]), int(row["credit_minor"])]
        for row in rows
    }


async def _statement_sums(admin: asyncpg.Connection) -> dict[int, list[int]]:
    """Per client: [debit, credit, line count] of its statement lines."""
    rows = await admin.fetch(
        "SELECT client_id,"
        " sum(amount_minor) FILTER (WHERE entry_type = 'debit') AS debit,"
        " sum(amount_minor) FILTER (WHERE entry_type = 'credit') AS credit,"
        " count(*) AS lines FROM rm_transactions GROUP BY client_id"
    )
    return {
        row["client_id"]: [
            int(row["debit"] or 0),
            int(row["credit"] or 0),
            row["lines"],
        ]
        for row in rows
    }


async def _tracked(admin: asyncpg.Connection, projection: str) -> dict[str, int]:
    rows = await admin.fetch(
        "SELECT stream_id, version FROM projection_tracking WHERE projection = $1",
        projection,
    )
    return {row["stream_id"]: int(row["version"]) for row in rows}


async def _heads(admin: asyncpg.Connection) -> dict[str, int]:
    rows = await admin.fetch(
        "SELECT stream_id, max(version) AS head FROM events GROUP BY stream_id"
    )
    return {row["stream_id"]: int(row["head"]) for row in rows}


def _expected_counts(clients: int, rounds: int) -> dict[str, int]:
    """The store after BUSINESSES businesses, `clients` clients, `rounds` postings
    each: one event per command."""
    return {
        "category.created": BUSINESSES,
        "client.created": clients,
        "transaction.posted": clients * rounds,
    }


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
    received: list[str] = []
    connection = await aio_pika.connect(scaled.settings.amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            scaled.settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(
            f"test.relay-crash-{uuid.uuid4().hex[:8]}", exclusive=True, auto_delete=True
        )
        await queue.bind(exchange, routing_key="#")

        async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            received.append(str(message.message_id))
            await message.ack()

        await queue.consume(collect)
        clients, expected = await _clients(scaled, appender)
        rng = random.Random(10)
        await post_round(appender, clients, expected, rng)
        held_log = tmp_path / "relay-held.log"
        held = start_worker(
            processes,
            ["relay"],
            {**env, "LEDGER_TEST_PAUSE_AT": "relay.after_confirm"},
            held_log,
        )

        async def held_after_confirms() -> bool:
            return _paused(held, held_log, "relay.after_confirm") and (
                len(received) == RELAY_BATCH
            )

        await wait_until(held_after_confirms, START_DEADLINE_S, "the relay held")
        killed_batch = (await _event_ids_in_relay_order(admin))[:RELAY_BATCH]
        assert received == killed_batch
        assert await admin.fetchval("SELECT count(*) FROM relay_cursor") == 0
        await post_round(appender, clients, expected, rng)
        sigkill(held)
        assert await admin.fetchval("SELECT count(*) FROM relay_cursor") == 0
        for projection in ("balances", "statements"):
            start_worker(
                processes,
                ["projector", "--projection", projection],
                env,
                tmp_path / f"{projection}.log",
            )
        start_worker(processes, ["relay"], env, tmp_path / "relay.log")
        await post_round(appender, clients, expected, rng)
        stored = await _event_ids_in_relay_order(admin)

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
    finally:
        await connection.close()
    assert await _stored_counts(admin) == _expected_counts(len(clients), 3)
    assert await _balances(admin) == expected
    assert await _statement_sums(admin) == {
        client_id: [debit, credit, 3] for client_id, (debit, credit) in expected.items()
    }
    assert await admin.fetchval("SELECT count(*) FROM projection_parked") == 0


async def _assert_exact(
    admin: asyncpg.Connection, expected: dict[int, list[int]], rounds: int
) -> None:
    """The store, both projections and their tracking rows, exactly."""
    assert await _stored_counts(admin) == _expected_counts(len(expected), rounds)
    assert await _balances(admin) == expected
    assert await _statement_sums(admin) == {
        client: [debit, credit, rounds] for client, (debit, credit) in expected.items()
    }
    heads = await _heads(admin)
    assert await _tracked(admin, "balances") == heads
    assert await _tracked(admin, "statements") == heads
    assert await admin.fetchval("SELECT count(*) FROM projection_parked") == 0


async def test_projectors_killed_between_commit_and_ack_skip_the_redelivered_batch(
    servers: tuple[str, str],
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """All events wait in the queue; a balances and a statements projector each
    commit their first batch and are held before acking it, then SIGKILLed; RabbitMQ
    redelivers that batch to their restarted processes, which skip it: every balance
    exact to the cent, every client exactly 3 statement lines, every tracking row at
    its stream's head, the checkpoint at the last position, nothing parked."""
    async with (
        partitioned_environment(servers, "crash", 1) as environment,
        running_appender(environment) as appender,
        admin_connection(environment) as admin,
    ):
        env = service_environment(environment, free_port(), log_level="INFO")
        clients, expected = await _clients(environment, appender)
        rng = random.Random(20)
        for _ in range(2):
            await post_round(appender, clients, expected, rng)
        start_worker(processes, ["relay"], env, tmp_path / "relay.log")
        last = await admin.fetchval("SELECT max(position) FROM events")
        await wait_until(
            lambda: _equals(relayed(admin), last), START_DEADLINE_S, "all relayed"
        )
        held = {
            projection: start_worker(
                processes,
                ["projector", "--projection", projection],
                {**env, "LEDGER_TEST_PAUSE_AT": "projector.after_commit"},
                tmp_path / f"{projection}-held.log",
            )
            for projection in ("balances", "statements")
        }

        async def both_held() -> bool:
            return all(
                _paused(
                    process, tmp_path / f"{name}-held.log", "projector.after_commit"
                )
                for name, process in held.items()
            )

        await wait_until(both_held, START_DEADLINE_S, "both projectors held")
        for projection in held:
            assert await _tracked(admin, projection) != {}  # the batch is committed
        await post_round(appender, clients, expected, rng)
        for process in held.values():
            sigkill(process)
        for projection in held:
            start_worker(
                processes,
                ["projector", "--projection", projection],
                env,
                tmp_path / f"{projection}.log",
            )
        await wait_until(
            lambda: _caught_up(admin), CATCH_UP_DEADLINE_S, "both at the head"
        )
        await _assert_exact(admin, expected, 3)
        last = await admin.fetchval("SELECT max(position) FROM events")
        assert await checkpoints(admin) == {"balances": last, "statements": last}


async def _equals(value: Awaitable[object], wanted: object) -> bool:
    return await value == wanted


async def _caught_up(admin: asyncpg.Connection) -> bool:
    """Both projections have applied every stream up to its head."""
    return (
        await behind(admin, "balances") == 0 and await behind(admin, "statements") == 0
    )
