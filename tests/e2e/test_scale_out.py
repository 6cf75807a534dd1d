"""Scale-out as real processes: three projectors (each applying every projection)
share the partitions and survive a SIGKILL of one of them, and a standby relay takes
over from a killed leader without losing an event or ever publishing beside it.

Commands go through an in-process Appender on the environment's database (the same
write path the API uses, minus HTTP, to keep thousands of postings quick); the relay
and the projectors are `python -m services.cli.main` processes, as in a deployment.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from services.cli.businesses import provision_business
from services.command_api.appender import Appender
from shared.bus.partitions import business_slot, partition_of_slot
from tests.e2e.deadlines import CLI_DEADLINE_S, START_DEADLINE_S, wait_until
from tests.e2e.message_collector import collected_message_ids
from tests.e2e.relay_lock import all_published, holders_are, lock_holders
from tests.e2e.supervisor import REPOSITORY
from tests.e2e.worker_figures import statement_sums
from tests.e2e.worker_processes import (
    admin_connection,
    behind,
    checkpoints,
    killed_at_end,
    partitioned_environment,
    post_round,
    received_partitions,
    relayed,
    running_appender,
    sigkill,
    start_worker,
    three_members,
)
from tests.integration.scenarios import create_client, id_of
from tests.support.environment import Environment, free_port, service_environment

PARTITIONS = 3
BUSINESSES = 8
CLIENTS_PER_BUSINESS = 25
POSTINGS_PER_CLIENT = 10
CATCH_UP_DEADLINE_S = 120.0


@pytest.fixture
async def scaled(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    """An environment of its own with three partitions."""
    async with partitioned_environment(servers, "scale", PARTITIONS) as environment:
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
    """Processes a test starts; any still running at its end are killed."""
    with killed_at_end() as started:
        yield started


async def _businesses_over_all_partitions(scaled: Environment) -> list[int]:
    """BUSINESSES new businesses, whose ids fall in every one of the 3 partitions."""
    businesses = [
        id_of(await provision_business(scaled.settings, f"Scale-out {index}"))
        for index in range(BUSINESSES)
    ]
    assert {
        partition_of_slot(business_slot(business_id), PARTITIONS)
        for business_id in businesses
    } == {0, 1, 2}
    return businesses


async def _three_projectors_and_the_relay(
    processes: list[subprocess.Popen[bytes]],
    env: dict[str, str],
    admin: asyncpg.Connection,
    tmp_path: Path,
) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    """Three projectors and the relay; returns once each projector holds a partition
    of its own (its process and log)."""
    stem = tmp_path / "projector"
    projectors = await three_members(processes, env, admin, stem)
    start_worker(processes, ["relay"], env, tmp_path / "relay.log")
    logs = [stem.with_name(f"{stem.name}-{index}.log") for index in range(3)]
    return projectors, logs


async def _assert_checkpoints_at_the_head_and_read_models_exact(
    admin: asyncpg.Connection, postings: int, expected: dict[int, list[int]]
) -> None:
    """Each projection's checkpoint is its partitions' lowest, every posting is
    stored once, and every client's debit and credit are `expected`, to the cent, in
    its balance and in its statement lines (one per posting)."""

    async def checkpoints_at_the_head() -> bool:
        head = await relayed(admin)
        marks = await checkpoints(admin)
        return all(position >= head for position in marks.values())

    await wait_until(checkpoints_at_the_head, START_DEADLINE_S, "checkpoints")
    marks = await checkpoints(admin)
    for projection in ("balances", "statements"):
        partitions = [marks[f"{projection}.{p}"] for p in range(PARTITIONS)]
        assert marks[projection] == min(partitions)
    assert (
        await admin.fetchval(
            "SELECT count(*) FROM events WHERE type = 'transaction.posted'"
        )
        == postings
    )
    rows = await admin.fetch(
        "SELECT client_id, debit_minor, credit_minor FROM rm_clients"
    )
    assert {
        row["client_id"]: [int(row["debit_minor"]), int(row["credit_minor"])]
        for row in rows
    } == expected
    lines = postings // len(expected)
    assert await statement_sums(admin) == {
        client: [debit, credit, lines] for client, (debit, credit) in expected.items()
    }


async def _assert_audit_verify_exits_0(env: dict[str, str]) -> None:
    verify = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli.main",
        "audit",
        "verify",
        cwd=REPOSITORY,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(verify.communicate(), CLI_DEADLINE_S)
    assert verify.returncode == 0, output.decode()


async def test_three_projectors_share_the_partitions_and_a_sigkill_loses_nothing(
    scaled: Environment,
    appender: Appender,
    admin: asyncpg.Connection,
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """Three `ledger projector` processes (each applying both projections) each
    subscribe to their own partition first, so each one receives events; 2,000
    postings across 200 clients of 8 businesses (spread over the 3 partitions) go in,
    and after half of them, once every projector has received some, one projector is
    SIGKILLed. The survivors take over its partition (RabbitMQ redelivers any unacked
    messages to a standby), every stream reaches its head in both projections,
    `ledger audit verify` exits 0, and every balance and every client's statement
    lines equal what the test posted, to the cent."""
    env = service_environment(scaled, free_port(), log_level="INFO")
    businesses = await _businesses_over_all_partitions(scaled)
    projectors, logs = await _three_projectors_and_the_relay(
        processes, env, admin, tmp_path
    )
    clients = [
        (business_id, await create_client(appender, business_id, f"Client {index}"))
        for business_id in businesses
        for index in range(CLIENTS_PER_BUSINESS)
    ]
    expected = {client_id: [0, 0] for _, client_id in clients}
    rng = random.Random(20261125)
    for _ in range(POSTINGS_PER_CLIENT // 2):
        await post_round(appender, clients, expected, rng)

    async def each_projector_received() -> bool:
        return all(received_partitions(log) for log in logs)

    await wait_until(
        each_projector_received, CATCH_UP_DEADLINE_S, "every projector receiving"
    )
    victim = projectors[0]
    sigkill(victim)
    for _ in range(POSTINGS_PER_CLIENT - POSTINGS_PER_CLIENT // 2):
        await post_round(appender, clients, expected, rng)

    async def caught_up() -> bool:
        for process in processes[1:]:
            assert process.poll() is None
        return (
            await behind(admin, "balances") == 0
            and await behind(admin, "statements") == 0
        )

    await wait_until(caught_up, CATCH_UP_DEADLINE_S, "both projections at the head")
    await _assert_checkpoints_at_the_head_and_read_models_exact(
        admin, len(clients) * POSTINGS_PER_CLIENT, expected
    )
    survivors = received_partitions(logs[1]) | received_partitions(logs[2])
    assert survivors == {0, 1, 2}
    await _assert_audit_verify_exits_0(env)


async def test_a_standby_relay_takes_over_when_the_leader_is_killed(
    scaled: Environment,
    appender: Appender,
    admin: asyncpg.Connection,
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """Relay A takes the leader lock; relay B, started after, waits on it (pg_locks:
    one granted holder, one waiter, never two holders). Events posted then reach a
    test queue; A is SIGKILLed; B takes the lock and publishes what follows: every
    event in the store reaches the queue (by message id; duplicates are allowed)."""
    env = service_environment(scaled, free_port())
    async with collected_message_ids(scaled.settings, "takeover") as received:
        leader = start_worker(processes, ["relay"], env, tmp_path / "leader.log")
        await wait_until(lambda: holders_are(admin, 1, 0), START_DEADLINE_S, "a leader")
        [(leader_pid, _)] = await lock_holders(admin)
        start_worker(processes, ["relay"], env, tmp_path / "standby.log")
        await wait_until(
            lambda: holders_are(admin, 1, 1), START_DEADLINE_S, "a standby"
        )
        business_id = id_of(await provision_business(scaled.settings, "Takeover"))
        clients = [
            (business_id, await create_client(appender, business_id)) for _ in range(20)
        ]
        expected = {client_id: [0, 0] for _, client_id in clients}
        rng = random.Random(7)
        await post_round(appender, clients, expected, rng)
        await wait_until(
            lambda: all_published(admin, received),
            START_DEADLINE_S,
            "the leader publishing",
        )
        assert [pid for pid, granted in await lock_holders(admin) if granted] == [
            leader_pid
        ]
        sigkill(leader)
        await post_round(appender, clients, expected, rng)
        await wait_until(
            lambda: holders_are(admin, 1, 0), START_DEADLINE_S, "a new leader"
        )
        [(new_leader_pid, _)] = await lock_holders(admin)
        assert new_leader_pid != leader_pid
        await wait_until(
            lambda: all_published(admin, received),
            START_DEADLINE_S,
            "the standby publishing",
        )
        stored = {
            str(row["event_id"])
            for row in await admin.fetch("SELECT event_id FROM events")
        }
        assert set(received) <= stored
        assert await admin.fetchval(
            "SELECT count(*) FROM events WHERE type = 'transaction.posted'"
        ) == 2 * len(clients)
