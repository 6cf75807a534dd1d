"""`ledger run` (what `make run` starts) when a server does not answer or a setting is
wrong: one clear message naming what and how to fix it, a non-zero exit, and never a
traceback. Nothing is started and no database is created; `ledger migrate` needs
PostgreSQL alone."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import asyncpg

from shared.store.postgres import with_database
from tests.e2e.deadlines import CLI_DEADLINE_S
from tests.e2e.supervisor import REPOSITORY
from tests.support.environment import free_port, strong_key

HOW = (
    "  Either start the distribution's package ({package}; `make services` runs "
    "deploy/local/ensure-services.sh, which starts it), or run the whole service in "
    "containers with its own PostgreSQL and RabbitMQ: "
    "`docker compose -f deploy/compose.yaml up --build`."
)


async def ledger_run(
    *command: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    """`python -m services.cli.main run` (or the command given) with only these LEDGER_*
    variables set (and a strong random hash-chain key unless they set one)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("LEDGER_")
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli.main", *(command or ("run",))],
        cwd=REPOSITORY,
        env={**environment, "LEDGER_HMAC_KEY": strong_key(), **variables},
        capture_output=True,
        text=True,
        timeout=CLI_DEADLINE_S,
        check=False,
    )


def postgres_at_closed_port() -> tuple[str, dict[str, str]]:
    port = free_port()
    url = f"postgresql://postgres:secret@127.0.0.1:{port}/ledger"
    return f"postgresql://postgres:***@127.0.0.1:{port}/ledger", {
        "LEDGER_ADMIN_DATABASE_URL": url,
        "LEDGER_DATABASE_URL": f"postgresql://ledger_app@127.0.0.1:{port}/ledger",
    }


async def test_postgresql_not_answering_is_named_with_the_two_ways_to_get_it(
    servers: tuple[str, str],
) -> None:
    """Proves the message for PostgreSQL, by pointing the database URLs at a closed
    port (RabbitMQ answers): exit 1, three lines naming PostgreSQL, its URL without
    the password, the distribution's package and the compose file."""
    shown, variables = postgres_at_closed_port()

    done = await ledger_run(**variables, LEDGER_AMQP_URL=servers[1])

    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 3, done.stderr
    assert lines[0].startswith(f"ledger: PostgreSQL does not answer at {shown} (")
    assert lines[1] == HOW.format(package="apt-get install postgresql")
    assert lines[2] == (
        "  (Another server: set LEDGER_ADMIN_DATABASE_URL and LEDGER_DATABASE_URL.)"
    )
    assert "secret" not in done.stderr
    assert done.stdout == ""


async def test_rabbitmq_not_answering_is_named_with_the_two_ways_to_get_it(
    servers: tuple[str, str],
) -> None:
    """Proves the message for RabbitMQ, by pointing LEDGER_AMQP_URL at a closed port
    (PostgreSQL answers): exit 1, three lines naming RabbitMQ, its URL without the
    password, the distribution's package and the compose file."""
    port = free_port()

    done = await ledger_run(
        LEDGER_ADMIN_DATABASE_URL=servers[0],
        LEDGER_AMQP_URL=f"amqp://guest:guest@127.0.0.1:{port}/",
    )

    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 3, done.stderr
    assert lines[0].startswith(
        f"ledger: RabbitMQ does not answer at amqp://guest:***@127.0.0.1:{port}/ ("
    )
    assert lines[1] == HOW.format(package="apt-get install rabbitmq-server")
    assert lines[2] == "  (Another server: set LEDGER_AMQP_URL.)"
    assert "Traceback" not in done.stderr


async def test_both_servers_not_answering_are_both_named() -> None:
    """Proves each server that does not answer gets its message, by closing both."""
    _, variables = postgres_at_closed_port()

    done = await ledger_run(
        **variables, LEDGER_AMQP_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    )

    assert done.returncode == 1
    servers = [line.split(" does not answer")[0] for line in done.stderr.splitlines()]
    assert [line for line in servers if line.startswith("ledger: ")] == [
        "ledger: PostgreSQL",
        "ledger: RabbitMQ",
    ]
    assert "Traceback" not in done.stderr


async def test_a_bad_setting_stops_the_start_with_one_line() -> None:
    """Proves settings are validated before anything connects, by starting with a
    port that is not a number: exit 2 and exactly one line naming the variable."""
    done = await ledger_run(LEDGER_HTTP_PORT="80a")

    assert done.returncode == 2
    assert done.stderr == "ledger: LEDGER_HTTP_PORT='80a' is not a whole number\n"
    assert done.stdout == ""


async def test_migrate_needs_postgresql_alone(servers: tuple[str, str]) -> None:
    """Proves `ledger migrate` (which compose and the Kubernetes Job run before
    RabbitMQ may be up) does not wait for RabbitMQ, by migrating a throwaway
    database with LEDGER_AMQP_URL at a closed port: exit 0, the database made."""
    name = f"ledger_test_migrate_{uuid.uuid4().hex[:12]}"
    admin_url = with_database(servers[0], name)
    try:
        done = await ledger_run(
            "migrate",
            LEDGER_ADMIN_DATABASE_URL=admin_url,
            LEDGER_AMQP_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/",
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines()[0] == "ledger: created the database"
    finally:
        conn = await asyncpg.connect(with_database(servers[0], "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
