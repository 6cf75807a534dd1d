"""Steps the worker-process tests share (test_scale_out, test_worker_crash_points):
an environment with partitioned projections, an in-process Appender on it, relays and
projectors started as `python -m services.cli.main` processes (as in a deployment) and
killed at the end, and the figures those tests read from the database."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg

from projections.partition_claims import lock_key
from projections.registry import QUEUES
from services.cli.businesses import provision_business
from services.command_api.appender import Appender
from shared import events as e
from shared.bus.partitions import business_slot, partition_of_slot
from shared.store.postgres import create_pool
from tests.e2e.deadlines import START_DEADLINE_S, wait_until
from tests.e2e.supervisor import REPOSITORY
from tests.integration.scenarios import create_client, id_of, submit, transaction
from tests.support.environment import Environment, create_environment, drop_environment

# pg_locks lists every database's locks; other test sessions run relays too.
THIS_DATABASE = (
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


@asynccontextmanager
async def partitioned_environment(
    servers: tuple[str, str], tag: str, partitions: int, queue_type: str = "classic"
) -> AsyncIterator[Environment]:
    """An environment of its own with `partitions` partitions (the projectors'
    queues, of `queue_type`, and each projection's checkpoints)."""
    environment = await create_environment(
        *servers, tag=tag, partitions=partitions, queue_type=queue_type
    )
    try:
        yield environment
    finally:
        await drop_environment(environment)


@asynccontextmanager
async def running_appender(environment: Environment) -> AsyncIterator[Appender]:
    """The API's write path, in process, on the environment's database."""
    pool = await create_pool(environment.settings.database_url, max_size=5)
    appender = Appender(pool, environment.settings.hmac_key.encode(), 500)
    appender.start()
    try:
        yield appender
    finally:
        await appender.stop()
        await pool.close()


@asynccontextmanager
async def admin_connection(
    environment: Environment,
) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection on the environment's database."""
    conn = await asyncpg.connect(environment.admin_url)
    try:
        yield conn
    finally:
        await conn.close()


@contextmanager
def killed_at_end() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; any still running at its end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start_worker(
    started: list[subprocess.Popen[bytes]],
    command: list[str],
    env: dict[str, str],
    log_path: Path,
) -> subprocess.Popen[bytes]:
    """`python -m services.cli.main COMMAND` in its own process group, output to a
    file."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", *command],
            cwd=REPOSITORY,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started.append(process)
    return process


def sigkill(process: subprocess.Popen[bytes]) -> None:
    """Kill the process (and its group) with SIGKILL: no handler, no cleanup runs."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def received_partitions(log_path: Path) -> set[int]:
    """The partitions a projector's log says it received messages from."""
    marker = "receiving partition "  # projections/consumer.py, _note_partitions
    return {
        int(line.split(marker)[1].split()[0])
        for line in log_path.read_text().splitlines()
        if marker in line
    }


async def ready_members(admin: asyncpg.Connection) -> dict[int, int]:
    """Partition -> backend pid of the projector that marked it ready (subscribed):
    the claims are keyed by the projectors' queues (projections/registry.QUEUES)."""
    rows = await admin.fetch(
        "SELECT objid::int8 AS partition, pid FROM pg_locks WHERE locktype = 'advisory'"
        " AND granted AND objsubid = 2 AND classid::int8 = $1" + THIS_DATABASE,
        lock_key("ready", QUEUES),
    )
    return {int(row["partition"]): int(row["pid"]) for row in rows}


async def behind(admin: asyncpg.Connection, projection: str) -> int:
    """How many streams the projection has not applied up to their head."""
    count: int = await admin.fetchval(
        "SELECT count(*) FROM (SELECT stream_id, max(version) AS head FROM events"
        " GROUP BY stream_id) AS s LEFT JOIN projection_tracking t"
        " ON t.projection = $1 AND t.stream_id = s.stream_id"
        " WHERE coalesce(t.version, 0) < s.head",
        projection,
    )
    return count


async def relayed(admin: asyncpg.Connection) -> int:
    """The position of the last event the relay has published (its cursor)."""
    position: int = await admin.fetchval(
        "SELECT position FROM relay_cursor WHERE relay = 'main'"
    )
    return position


async def checkpoints(admin: asyncpg.Connection) -> dict[str, int]:
    rows = await admin.fetch(
        "SELECT projection, position_last FROM projection_checkpoint"
    )
    return {row["projection"]: int(row["position_last"]) for row in rows}


async def post_round(
    appender: Appender,
    clients: list[tuple[int, int]],
    expected: dict[int, list[int]],
    rng: random.Random,
) -> None:
    """One posting to every (business, client), all at once; `expected` keeps
    [debit, credit] per client."""
    commands = []
    for business_id, client_id in clients:
        amount_minor = rng.randint(1, 500_000)
        entry_type: e.EntryType = rng.choice(["debit", "credit"])
        expected[client_id][0 if entry_type == "debit" else 1] += amount_minor
        commands.append(transaction(business_id, client_id, amount_minor, entry_type))
    await asyncio.gather(*(submit(appender, command) for command in commands))


async def clients_over_partitions(
    environment: Environment, appender: Appender, businesses: int, clients_each: int
) -> tuple[list[tuple[int, int]], dict[int, list[int]]]:
    """(business, client) pairs of new businesses over all the partitions, and their
    [debit, credit] figures, all zero."""
    business_ids = [
        id_of(await provision_business(environment.settings, f"Business {index}"))
        for index in range(businesses)
    ]
    partitions = environment.settings.projection_partitions
    assert {
        partition_of_slot(business_slot(business_id), partitions)
        for business_id in business_ids
    } == set(range(partitions))
    clients = [
        (business_id, await create_client(appender, business_id, f"Client {index}"))
        for business_id in business_ids
        for index in range(clients_each)
    ]
    return clients, {client_id: [0, 0] for _, client_id in clients}


def paused(process: subprocess.Popen[bytes], log_path: Path, point: str) -> bool:
    """True once the process logged that it holds at `point`."""
    text = log_path.read_text(errors="replace")
    assert process.poll() is None, text
    return f"test pause at {point}" in text  # shared/pause_points.py


def projector_log(tmp_path: Path, tag: str) -> Path:
    return tmp_path / f"projector-{tag}.log"


def projector(
    processes: list[subprocess.Popen[bytes]],
    env: dict[str, str],
    tmp_path: Path,
    tag: str,
    pause_at: str = "",
) -> subprocess.Popen[bytes]:
    """A projector (it applies every projection), logging to projector-TAG.log."""
    return start_worker(
        processes,
        ["projector"],
        {**env, "LEDGER_TEST_PAUSE_AT": pause_at},
        projector_log(tmp_path, tag),
    )


async def three_members(
    processes: list[subprocess.Popen[bytes]],
    env: dict[str, str],
    admin: asyncpg.Connection,
    log_stem: Path,
    pause_at: str = "",
) -> list[subprocess.Popen[bytes]]:
    """Three projectors sharing the partitions (the first armed at `pause_at`, each
    logging to STEM-INDEX.log), once each has claimed a partition of its own."""
    logs = [log_stem.with_name(f"{log_stem.name}-{index}.log") for index in range(3)]
    started = [
        start_worker(
            processes,
            ["projector"],
            {**env, "LEDGER_TEST_PAUSE_AT": pause_at if index == 0 else ""},
            log,
        )
        for index, log in enumerate(logs)
    ]

    async def each_a_member() -> bool:
        for process, log in zip(started, logs, strict=True):
            assert process.poll() is None, log.read_text()
        members = await ready_members(admin)
        return sorted(members) == [0, 1, 2] and len(set(members.values())) == 3

    await wait_until(each_a_member, START_DEADLINE_S, "three projector members")
    return started


async def held_in_batch(process: subprocess.Popen[bytes], log_path: Path) -> bool:
    return paused(process, log_path, "projector.before_commit")
