"""Create and drop an isolated test environment: database, exchange, queue names."""

from __future__ import annotations

import os
import secrets
import socket
import uuid

import aio_pika
import asyncpg
import msgspec

from projections.registry import PROJECTIONS, QUEUES
from projections.schemas import schema_files
from services.bootstrap import create_database, migrate
from shared.bus import webhook_queue
from shared.bus.partitions import queue_names
from shared.bus.queue_types import typed_name
from shared.config import Settings
from shared.key_settings import settings_master_keys
from shared.setting_checks import QUEUE_TYPES
from shared.store.postgres import (
    shared_migrations,
    with_database,
    with_user,
)

APP_ROLE = "ledger_app"


# Tests count a business's events exactly; a chain-head checkpoint (a ledger.checkpoint
# event) landing mid-test would add one. Tests of checkpoints take them explicitly or
# set a short interval; benches keep the service's default.
TEST_CHECKPOINT_INTERVAL_S = 3600.0
# The one read-your-writes bound of every test tier: the in-process service of the
# integration tests and the `ledger run` processes of the e2e tests both wait this long
# for the read models (commands before a 202, queries before a 503). Above the service's
# 5 s default because a loaded 2-core machine runs both tiers. Benches keep the default.
READ_YOUR_WRITES_TIMEOUT_S = 10.0


class Environment(msgspec.Struct, frozen=True):
    settings: Settings
    admin_url: str
    server_url: str


async def create_environment(
    postgres_url: str,
    amqp_url: str,
    tag: str,
    partitions: int = 1,
    checkpoint_interval_s: float = TEST_CHECKPOINT_INTERVAL_S,
    read_your_writes_timeout_s: float = READ_YOUR_WRITES_TIMEOUT_S,
    queue_type: str = "classic",
) -> Environment:
    suffix = uuid.uuid4().hex[:12]
    database = f"ledger_test_{tag}_{suffix}"
    admin_url = with_database(postgres_url, database)
    await create_database(admin_url)
    await migrate(admin_url, shared_migrations() + schema_files())
    settings = Settings(
        database_url=with_user(admin_url, APP_ROLE),
        admin_database_url=admin_url,
        amqp_url=amqp_url,
        exchange=f"ledger.events.test-{suffix}",
        queue_prefix=f"ledger.test-{suffix}.projection.",
        read_your_writes_timeout_s=read_your_writes_timeout_s,
        checkpoint_interval_s=checkpoint_interval_s,
        projection_partitions=partitions,
        queue_type=queue_type,
        hmac_key=strong_key(),
    )
    settings_master_keys(settings)  # the test process reads the sealed fields too
    return Environment(settings=settings, admin_url=admin_url, server_url=postgres_url)


async def drop_environment(env: Environment) -> None:
    name = env.admin_url.rsplit("/", 1)[-1]
    conn = await asyncpg.connect(with_database(env.server_url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
    connection = await aio_pika.connect(env.settings.amqp_url)
    try:
        channel = await connection.channel()
        settings = env.settings
        # The projectors' queues of both types, and an earlier version's per
        # projection (a test of the upgrade makes them).
        groups = [typed_name(QUEUES, kind) for kind in QUEUE_TYPES]
        for group in (*groups, *PROJECTIONS):
            for name in queue_names(
                settings.queue_prefix, group, settings.projection_partitions
            ):
                await channel.queue_delete(name)
        for kind in QUEUE_TYPES:
            await channel.queue_delete(
                webhook_queue.queue_name(settings.exchange, kind)
            )
        await channel.exchange_delete(settings.exchange + ".frames")
        await channel.exchange_delete(settings.exchange)
    finally:
        await connection.close()


def strong_key() -> str:
    """A random hash-chain key, as `ledger hmac-key create` makes (the service refuses
    the public development key and anything shorter than 32 bytes)."""
    return secrets.token_urlsafe(48)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service_environment(
    env: Environment,
    port: int,
    log_level: str = "WARNING",
    api_processes: int | None = 1,
) -> dict[str, str]:
    """The process environment `make run` would give, pointed at the throwaway env,
    with `api_processes` API processes (one unless told: the tests that hold, kill or
    count one API process need it alone; None leaves the default: one per two cores
    under `ledger run`, one for `ledger api`)."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("LEDGER_")
    }
    return {
        **inherited,
        "LEDGER_DATABASE_URL": env.settings.database_url,
        "LEDGER_ADMIN_DATABASE_URL": env.admin_url,
        "LEDGER_AMQP_URL": env.settings.amqp_url,
        "LEDGER_EXCHANGE": env.settings.exchange,
        "LEDGER_QUEUE_PREFIX": env.settings.queue_prefix,
        "LEDGER_PROJECTION_PARTITIONS": str(env.settings.projection_partitions),
        "LEDGER_QUEUE_TYPE": env.settings.queue_type,
        "LEDGER_HTTP_PORT": str(port),
        "LEDGER_HMAC_KEY": env.settings.hmac_key,
        "LEDGER_CHECKPOINT_INTERVAL_S": str(env.settings.checkpoint_interval_s),
        "LEDGER_READ_YOUR_WRITES_TIMEOUT_S": str(
            env.settings.read_your_writes_timeout_s
        ),
        "LEDGER_LOG_LEVEL": log_level,
        "PYTHONUNBUFFERED": "1",
        **(
            {}
            if api_processes is None
            else {"LEDGER_API_PROCESSES": str(api_processes)}
        ),
    }
