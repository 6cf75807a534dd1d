"""The `ledger` command: run the processes, migrate, and administer businesses and keys.

With services/bootstrap.py, which opens every pool and connection, this is where the
processes are wired: the workers (relay, projector, monitor) get their openers in
services/cli/workers.py, the admin commands their connections (the business and
key commands in services/cli/businesses.py), and `ledger api` starts the HTTP app,
whose setup (services/http/app.py) wires the API process. Services never import one
another.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

import asyncpg

from projections.registry import PROJECTIONS
from services import bootstrap
from services.cli import api_processes, logs, personal_keys, preflight
from services.cli.businesses import admin_command
from services.cli.garbage_collector import collect_less
from services.cli.personal_keys import erase_client, rotate_master_key
from services.cli.workers import run_worker
from shared.config import Settings, SettingsError, load_settings
from shared.key_settings import resolve_key
from shared.store.postgres import shared_migrations
from shared.worker import event_loop

log = logging.getLogger("ledger")


def build_parser() -> argparse.ArgumentParser:
    """The `ledger` command line (deploy/ tests check their commands against it)."""
    parser = argparse.ArgumentParser(prog="ledger", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    api_processes.add_run_parser(sub)
    sub.add_parser("migrate", help="create the database if missing; apply migrations")
    sub.add_parser("api", help="serve the HTTP API (command and query routes)")
    sub.add_parser("relay", help="publish committed events to RabbitMQ")
    sub.add_parser("projector", help="apply the events to every read model")
    monitor = sub.add_parser("monitor", help="decide balance monitors' crossings")
    monitor.add_argument(
        "--replay",
        action="store_true",
        help="decide every crossing again from the first event (none is recorded"
        " twice), then go on",
    )
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


# Long-running processes log to stdout (a container's log); admin commands to
# stderr, so that their --json output on stdout stays clean.
SERVER_COMMANDS = ("run", "api", "relay", "projector", "monitor", "webhooks")


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
        replay = bool(getattr(args, "replay", False))
        event_loop.run(run_worker(settings, args.command, replay), settings.event_loop)
    log.info("%s stopped", role, extra={"event": "process.stopped", "role": role})


def _supervises_api(settings: Settings, args: argparse.Namespace) -> bool:
    """`ledger api` starts several API processes (and serves in none) when it is not
    itself a child of a supervisor and LEDGER_API_PROCESSES asks for more than one;
    unset (0) or 1, it serves alone, as it did before there could be several."""
    from services.cli.processes import SUPERVISOR_PID

    return (
        args.command == "api"
        and SUPERVISOR_PID not in os.environ
        and settings.api_processes > 1
    )


def _supervise(settings: Settings, args: argparse.Namespace) -> int:
    """`ledger run`: every process; `ledger api` with LEDGER_API_PROCESSES above 1:
    that many API processes."""
    from services.cli.processes import roles, supervise

    workers = args.command == "run"
    available = asyncio.run(api_processes.connections_available(settings))
    asked = getattr(args, "api_processes", None)
    count = api_processes.count(settings, asked, available, workers)
    log.info(
        "starting %d API processes",
        count,
        extra={"event": "process.api_processes", "role": args.command},
    )
    if workers:
        return supervise(roles(count))
    return supervise([["api"]] * count)


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
        if args.command == "run" or _supervises_api(settings, args):
            return _supervise(settings, args)
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
