"""Before `ledger run` starts: do PostgreSQL and RabbitMQ answer? (`ledger migrate`,
which a compose file or a Kubernetes Job runs before RabbitMQ may be up, asks only
about PostgreSQL.)

Without this, a server that is down surfaced as a raw socket error (or, for RabbitMQ,
as workers restarting in a loop). Each server that does not answer gets one message
naming it, its URL without the password, and the two ways to get one.
"""

from __future__ import annotations

import aio_pika

from services import bootstrap
from services.bootstrap import PREFLIGHT_TIMEOUT_S
from shared.config import Settings
from shared.setting_checks import redact
from shared.store.postgres import CONNECTION_ERRORS, with_database

HOW_TO_GET_ONE = {
    "PostgreSQL": "apt-get install postgresql",
    "RabbitMQ": "apt-get install rabbitmq-server",
}
_VARIABLE = {
    "PostgreSQL": "LEDGER_ADMIN_DATABASE_URL and LEDGER_DATABASE_URL",
    "RabbitMQ": "LEDGER_AMQP_URL",
}


def unreachable_message(server: str, url: str, error: BaseException) -> str:
    reason = str(error) or type(error).__name__
    return (
        f"{server} does not answer at {redact(url)} ({reason}).\n"
        f"  Either start the distribution's package ({HOW_TO_GET_ONE[server]}; "
        "`make services` runs deploy/local/ensure-services.sh, which starts it), or "
        "run the whole service in containers with its own PostgreSQL and RabbitMQ: "
        "`docker compose -f deploy/compose.yaml up --build`.\n"
        f"  (Another server: set {_VARIABLE[server]}.)"
    )


async def _postgres(url: str) -> None:
    # The server's maintenance database: the ledger database may not exist yet
    # (the migrations create it).
    async with bootstrap.postgres_probe(
        with_database(url, "postgres"), PREFLIGHT_TIMEOUT_S
    ):
        pass


async def _rabbitmq(url: str) -> None:
    async with bootstrap.rabbitmq_probe(url, PREFLIGHT_TIMEOUT_S):
        pass


async def unreachable(settings: Settings, *, rabbitmq: bool = True) -> list[str]:
    """A message for each server that does not answer (none when all do); RabbitMQ
    only when asked (the migrations need PostgreSQL alone)."""
    messages: list[str] = []
    try:
        await _postgres(settings.admin_database_url)
    except CONNECTION_ERRORS as error:
        messages.append(
            unreachable_message("PostgreSQL", settings.admin_database_url, error)
        )
    if not rabbitmq:
        return messages
    try:
        await _rabbitmq(settings.amqp_url)
    except (*CONNECTION_ERRORS, aio_pika.exceptions.AMQPConnectionError) as error:
        messages.append(unreachable_message("RabbitMQ", settings.amqp_url, error))
    return messages
