"""How many API processes `ledger run` (and `ledger api`) start on the one port, and
whether PostgreSQL has connections enough for them.

Each API process is a `ledger api` with its own pool, appender (its own group
commit), LISTEN connection, claims session and fold workers, listening on the same
port with SO_REUSEPORT (services/http/listener.py). What must hold across them holds
in PostgreSQL: Idempotency-Keys in flight and expensive work are advisory locks
(services/http/session_locks.py), the rate limits are shared buckets
(services/http/shared_buckets.py).

The count is `--api-processes N` (`ledger run`), else LEDGER_API_PROCESSES. Unset
(0), `ledger run` starts one per two cores this process may run on (its CPU affinity:
a container's cpuset; at least one), at most DEFAULT_MAX: past that the processes
mostly wait on PostgreSQL's commits (one commit order,
services/command_api/commit.py), and each holds a pool; the other half of the cores
runs PostgreSQL, RabbitMQ, the relay and the projectors on the same machine. Measured
on 2 cores (README, "Several API processes"), two API processes beside them posted
0.55-0.59x what one did. `ledger api` alone serves as one process unless more are
asked for: it runs where an operator already chose how many (a container, a pod, a
unit file), and CPU affinity ignores a cgroup's CPU quota, so a default from the
cores could multiply the processes and connections of an existing deployment. A count
that was asked for and does not fit in PostgreSQL's max_connections stops the start
with a message; the default is lowered until it fits (and logged).
"""

from __future__ import annotations

import argparse
import logging
import os

from services import bootstrap
from shared.config import API_PROCESSES_MAX, Settings, SettingsError

log = logging.getLogger("ledger.supervisor")
DEFAULT_MAX = 4
# The connections a process may open beside its pool: the API's LISTEN connection
# and claims session; `ledger run`'s workers: the relay's two, the projector's pool
# and claims session, the monitor's one, the webhook worker's pool (senders + 2).
API_EXTRA_CONNECTIONS = 2
_AVAILABLE = """
SELECT current_setting('max_connections')::int
     - current_setting('superuser_reserved_connections')::int
"""


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def api_connections(settings: Settings) -> int:
    """The most PostgreSQL connections one API process opens."""
    return settings.api_pool_size_max + API_EXTRA_CONNECTIONS + settings.fold_processes


def worker_connections(settings: Settings) -> int:
    """The most PostgreSQL connections `ledger run`'s other children open."""
    projector = bootstrap.PROJECTOR_POOL_SIZE_MAX + 1
    return 2 + projector + 1 + settings.webhook_senders + 2


async def connections_available(settings: Settings) -> int:
    """max_connections less the superuser's reserve, as the server says (asked as
    the service's own role: a container running `ledger api` has no admin URL)."""
    url = settings.database_url
    async with bootstrap.postgres_probe(url, bootstrap.PREFLIGHT_TIMEOUT_S) as conn:
        return int(await conn.fetchval(_AVAILABLE))


def count(settings: Settings, asked: int | None, available: int, workers: bool) -> int:
    """The API processes to start: `asked` (the flag), else the setting, else the
    default; SettingsError when an asked-for count, or even one, does not fit."""
    asked = asked or settings.api_processes or None
    others = worker_connections(settings) if workers else 0
    each = api_connections(settings)
    fits = (available - others) // each
    if asked is not None and asked > fits or fits < 1:
        processes = asked or 1
        raise SettingsError(
            f"{processes} API processes need up to {processes} x {each} PostgreSQL"
            f" connections (LEDGER_API_POOL_SIZE_MAX={settings.api_pool_size_max}"
            f" + {API_EXTRA_CONNECTIONS} + LEDGER_FOLD_PROCESSES="
            f"{settings.fold_processes}){f' + {others} for the workers' * workers},"
            f" {processes * each + others} in all; the server allows {available}"
            " (max_connections less superuser_reserved_connections). Run fewer"
            " (--api-processes, LEDGER_API_PROCESSES), lower LEDGER_API_POOL_SIZE_MAX,"
            " or raise max_connections."
        )
    if asked is not None:
        return asked
    default = min(max(1, usable_cores() // 2), DEFAULT_MAX) if workers else 1
    if fits < default:
        log.warning(
            "starting %d API processes, not %d: PostgreSQL's max_connections (%d"
            " usable) has room for no more",
            fits,
            default,
            available,
            extra={"event": "process.api_processes_lowered", "role": "run"},
        )
    return min(default, fits)


def add_run_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`ledger run [--api-processes N]`."""
    run = sub.add_parser("run", help="migrate, then start every process (Ctrl-C stops)")
    run.add_argument(
        "--api-processes",
        type=_positive,
        metavar="N",
        help="API processes on the one port (default: LEDGER_API_PROCESSES, else one"
        f" per two cores, at most {DEFAULT_MAX})",
    )


def _positive(text: str) -> int:
    number = int(text)
    if not 1 <= number <= API_PROCESSES_MAX:
        raise argparse.ArgumentTypeError(f"not between 1 and {API_PROCESSES_MAX}")
    return number
