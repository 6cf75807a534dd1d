"""The `ledger` command: run the processes, migrate, and administer businesses and keys.

With services/bootstrap.py, which opens every pool and connection, this is where the
processes are wired: the relay and each projector get their openers here
(wire_relay, wire_projector), the admin commands their connections (the business and
key commands in services/cli/businesses.py), and `ledger api` starts the HTTP app,
whose setup (services/http/app.py) wires the API process. Services never import one
another.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import asyncpg

from projections.consumer import ATTEMPTS_MAX, RETRY_DELAY_S, Projector
from projections.registry import PROJECTIONS
from projections.runner import Projection
from services import bootstrap
from services.cli import logs, personal_keys, preflight, worker_health
from services.cli.businesses import admin_command
from services.cli.garbage_collector import collect_less
from services.cli.personal_keys import erase_client, rotate_master_key
from services.cli.webhook_worker import wire_webhooks
from services.outbox_relay.relay import Relay
from shared.config import Settings, SettingsError, load_settings, resolve_key
from shared.store.postgres import shared_migrations
from shared.worker import event_loop
from shared.worker.loop import run_until_stopped

log = logging.getLogger("ledger")


def build_parser() -> argparse.ArgumentParser:
    """The `ledger` command line (deploy/ tests check their commands against it)."""
    parser = argparse.ArgumentParser(prog="ledger", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="migrate, then start every process (Ctrl-C stops)")
    sub.add_parser("migrate", help="create the database if missing; apply migrations")
    sub.add_parser("api", help="serve the HTTP API (command and query routes)")
    sub.add_parser("relay", help="publish committed events to RabbitMQ")
    sub.add_parser("projector", help="apply the events to every read model")
    sub.add_parser("webhooks", help="deliver events to the webhook endpoints")

    business = sub.add_parser("business", help="businesses").add_subparsers(
        dest="action", required=True
    )
    create = business.add_parser("create", help="create a business and its first key")
    create.add_argument("name")
    create.add_argument("--currency", default="GHS")
    create.add_argument("--owner-id", type=int)
    create.add_argument("--json", action="store_true")
    rotate = business.add_parser(
        "rotate-bid", help="replace a business's export bid (shown once, stored hashed)"
    )
    rotate.add_argument("business_id", type=int)

    key = sub.add_parser("key", help="API keys").add_subparsers(
        dest="action", required=True
    )
    key_create = key.add_parser("create", help="add an API key to a business")
    key_create.add_argument("--business", type=int, required=True)
    key_create.add_argument("--json", action="store_true")
    key_revoke = key.add_parser("revoke", help="revoke an API key")
    key_revoke.add_argument("key_id", type=int)

    _audit_parsers(sub)

    replay = sub.add_parser(
        "replay", help="rebuild read models from the events beside the live ones; swap"
    )
    replay.add_argument("--projection", choices=PROJECTIONS, action="append")
    replay.add_argument("--business", type=int)
    replay.add_argument("--json", action="store_true")

    personal_keys.add_parsers(sub)
    hmac_key = sub.add_parser("hmac-key", help="the hash chain's key").add_subparsers(
        dest="action", required=True
    )
    key_file = hmac_key.add_parser(
        "create", help="write a random key to a file, unless the file exists"
    )
    key_file.add_argument("--file", type=Path, required=True)
    return parser


def _audit_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`ledger audit verify|checkpoint|plaintext`."""
    audit = sub.add_parser("audit", help="auditors' checks").add_subparsers(
        dest="action", required=True
    )
    verify = audit.add_parser(
        "verify", help="recompute every hash chain and read-model figure; 1 on a diff"
    )
    verify.add_argument("--business", type=int)
    verify.add_argument("--json", action="store_true")
    audit.add_parser("checkpoint", help="record the chain heads of changed streams")
    plaintext = audit.add_parser(
        "plaintext", help="list the clients whose events hold personal data in clear"
    )
    plaintext.add_argument("--business", type=int)
    plaintext.add_argument("--json", action="store_true")


async def _migrate(settings: Settings) -> None:
    from projections.schemas import schema_files

    created = await bootstrap.create_database(settings.admin_database_url)
    applied = await bootstrap.migrate(
        settings.admin_database_url, shared_migrations() + schema_files()
    )
    if created:
        print("ledger: created the database", file=sys.stderr)
    for name in applied:
        print(f"ledger: applied {name}", file=sys.stderr)


async def _replay_or_audit(settings: Settings, args: argparse.Namespace) -> int:
    """`ledger replay` (as the admin: it builds tables and swaps them in) and `ledger
    audit` (as the application's role), each on the connection opened for it."""
    if args.command == "replay":
        from services.replay.commands import replay_command

        collect_less()
        async with bootstrap.admin_connection(settings) as conn:
            return await replay_command(
                conn, args.projection or [], args.business, args.json
            )
    from services.audit import commands

    async with bootstrap.audit_connection(settings) as conn:
        if args.action == "verify":
            return await commands.verify_command(
                conn, settings, args.business, args.json
            )
        if args.action == "plaintext":
            return await commands.plaintext_command(conn, args.business, args.json)
        return await commands.checkpoint_command(conn, settings)


def wire_relay(settings: Settings) -> Relay:
    """The relay, with openers for its leader-lock, frames-lane and broker
    connections."""
    return Relay(
        settings,
        open_leader_connection=partial(bootstrap.relay_leader_connection, settings),
        open_frames_connection=partial(bootstrap.relay_frames_connection, settings),
        open_broker=partial(bootstrap.relay_broker, settings),
    )


def wire_projector(
    settings: Settings,
    projections: Sequence[Projection] = tuple(PROJECTIONS.values()),
    attempts_max: int = ATTEMPTS_MAX,
    retry_delay_s: float = RETRY_DELAY_S,
) -> Projector:
    """A projector (of every projection, unless a test names a few), with openers
    for its pool, its partition-claims connection and its broker connection."""
    return Projector(
        settings,
        projections,
        open_pool=partial(bootstrap.projector_pool, settings),
        open_claims=partial(bootstrap.partition_claims_connection, settings),
        open_broker=partial(bootstrap.projector_broker, settings),
        attempts_max=attempts_max,
        retry_delay_s=retry_delay_s,
    )


async def _run_worker(settings: Settings, args: argparse.Namespace) -> None:
    from shared import pause_points

    pause_points.arm(os.environ)  # test-only; inert unless LEDGER_TEST_PAUSE_AT
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with worker_health.serving(settings):
        if args.command == "relay":
            await run_until_stopped(wire_relay(settings).run, stop)
        elif args.command == "webhooks":
            await run_until_stopped(wire_webhooks(settings).run, stop)
        else:
            await run_until_stopped(wire_projector(settings).run, stop)


# Long-running processes log to stdout (a container's log); admin commands to
# stderr, so that their --json output on stdout stays clean.
SERVER_COMMANDS = ("run", "api", "relay", "projector", "webhooks")


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    """Run one process of `ledger run` (api, relay, a projector) until SIGTERM, with
    a log line when it starts and when it has stopped."""
    from services.cli.processes import exit_with_supervisor

    exit_with_supervisor()
    role = str(args.command)
    log.info("%s starting", role, extra={"event": "process.started", "role": role})
    if args.command == "api":
        from services.http.app import serve
        from shared import pause_points

        pause_points.arm(os.environ)  # test-only; inert unless LEDGER_TEST_PAUSE_AT
        collect_less()  # after the imports: what they made is frozen
        serve(settings)
    else:
        collect_less()
        event_loop.run(_run_worker(settings, args), settings.event_loop)
    log.info("%s stopped", role, extra={"event": "process.stopped", "role": role})


def _preflight(settings: Settings, command: str) -> int:
    """0 when PostgreSQL (and, for `run`, RabbitMQ) answers; else say which does not,
    and return 1."""
    messages = asyncio.run(preflight.unreachable(settings, rabbitmq=command == "run"))
    for message in messages:
        print(f"ledger: {message}", file=sys.stderr)
    return 1 if messages else 0


def _hmac_key_file(path: Path) -> int:
    """Needs no settings (it makes the key they will name), so it runs before them."""
    from services.cli.hmac_key_file import create_key_file

    stderr = sys.stderr
    try:
        created = create_key_file(path)
    except OSError as error:
        print(f"ledger: cannot create the HMAC key file {path}: {error}", file=stderr)
        return 1
    if created:
        print(
            f"ledger: created a new random HMAC key in {path}; back it up: the audit"
            " verifies the events it hashes only with it",
            file=stderr,
        )
    else:
        print(f"ledger: the HMAC key is in {path} (kept)", file=stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "hmac-key":
        return _hmac_key_file(args.file)
    try:
        settings = resolve_key(load_settings(os.environ))
        server = args.command in SERVER_COMMANDS
        logs.configure(
            settings.log_level,
            settings.log_format,
            sys.stdout if server else sys.stderr,
        )
        if args.command in ("run", "migrate") and _preflight(settings, args.command):
            return 1
        if args.command in ("run", "migrate"):
            asyncio.run(_migrate(settings))
        if args.command == "run":
            from services.cli.processes import supervise

            return supervise()
        if args.command in SERVER_COMMANDS[1:]:
            _serve(settings, args)
        elif args.command in ("business", "key"):
            return asyncio.run(admin_command(settings, args))
        elif args.command == "client":
            return asyncio.run(
                erase_client(settings, args.business, args.client_id, args.json)
            )
        elif args.command == "master-key":
            return asyncio.run(rotate_master_key(settings))
        elif args.command in ("replay", "audit"):
            return event_loop.run(_replay_or_audit(settings, args), settings.event_loop)
    except SettingsError as error:
        print(f"ledger: {error}", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError) as error:
        print(f"ledger: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
