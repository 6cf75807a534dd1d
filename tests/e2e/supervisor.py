"""`ledger run` as the end-to-end tests start it: `python -m services.cli.main run`
exactly as `make run` does, on a free port against a throwaway environment, stopped
with SIGINT and checked to leave no child behind; the real CLI beside it; and what the
event store holds for a business, read as the superuser."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec

from tests.e2e.deadlines import (
    CLI_DEADLINE_S,
    START_DEADLINE_S,
    STOP_DEADLINE_S,
    wait_until,
)
from tests.e2e.ledger_api import Api
from tests.support.environment import (
    Environment,
    create_environment,
    drop_environment,
    free_port,
    service_environment,
)
from tests.support.standby import replica_url

REPOSITORY = Path(__file__).resolve().parents[2]


class LedgerService(msgspec.Struct, kw_only=True):
    """The running supervisor and what a test needs to reach it."""

    environment: Environment
    process: subprocess.Popen[bytes]
    base_url: str
    env: dict[str, str]
    log_path: Path

    def log_tail(self, characters: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:]


def start_supervisor(
    env: dict[str, str], log_path: Path, arguments: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    """`python -m services.cli.main run ARGUMENTS`, as `make run` starts it, output to
    `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "run", *arguments],
            cwd=REPOSITORY,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, so a failed stop can end it alone
        )


def children_of(pid: int) -> list[int]:
    """The child process ids of `pid` (from Linux's /proc; none where it is absent)."""
    listing = Path(f"/proc/{pid}/task/{pid}/children")
    if not listing.exists():
        return []
    return [int(child) for child in listing.read_text().split()]


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _answers(
    http: aiohttp.ClientSession, url: str, process: subprocess.Popen[bytes]
) -> bool:
    if process.poll() is not None:
        raise AssertionError(
            f"`ledger run` exited with {process.returncode} while starting"
        )
    try:
        async with http.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


def launch(
    environment: Environment,
    log_path: Path,
    overrides: dict[str, str] | None = None,
    arguments: tuple[str, ...] = (),
) -> LedgerService:
    """Start `ledger run ARGUMENTS` on a free port against the environment, as `make
    run` does (with `overrides` added to its environment)."""
    port = free_port()
    env = service_environment(
        environment, port, os.environ.get("LEDGER_E2E_LOG_LEVEL", "WARNING")
    )
    env.update(overrides or {})
    return LedgerService(
        environment=environment,
        process=start_supervisor(env, log_path, arguments),
        base_url=f"http://127.0.0.1:{port}",
        env=env,
        log_path=log_path,
    )


@asynccontextmanager
async def running(
    servers: tuple[str, str],
    log_path: Path,
    tag: str,
    overrides: dict[str, str] | None = None,
    arguments: tuple[str, ...] = (),
    replica: bool = False,
) -> AsyncIterator[LedgerService]:
    """`ledger run` on a free port against a throwaway environment, until the block
    ends (once /healthz and /readyz answer 200); with `replica`, the local hot
    standby is its read replica (LEDGER_READ_DATABASE_URLS, tests/support/standby.py).

    The end sends SIGINT (Ctrl-C) and asserts the supervisor stops every child and
    exits 0 within the deadline, then drops the database, exchange and queues."""
    environment = await create_environment(*servers, tag=tag)
    if replica:
        overrides = {"LEDGER_READ_DATABASE_URLS": replica_url(environment)} | (
            overrides or {}
        )
    service = launch(environment, log_path, overrides, arguments)
    process = service.process
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=5)
        ) as http:
            for route in ("/healthz", "/readyz"):
                url = service.base_url + route
                try:
                    await wait_until(
                        lambda url=url: _answers(http, url, process),
                        START_DEADLINE_S,
                        f"GET {route} answers 200",
                    )
                except AssertionError as error:
                    raise AssertionError(f"{error}\n{service.log_tail()}") from None
        yield service
    finally:
        try:
            children = children_of(process.pid)
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                returncode = await asyncio.to_thread(process.wait, STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise AssertionError(
                    f"`ledger run` did not stop within {STOP_DEADLINE_S} s of SIGINT"
                ) from None
            assert returncode == 0, (
                f"`ledger run` exited {returncode}\n{service.log_tail()}"
            )
            assert [child for child in children if is_running(child)] == []
        finally:
            await drop_environment(environment)


async def run_cli(
    service: LedgerService, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run `python -m services.cli.main ARGS` with the service's environment."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli.main", *args],
        cwd=REPOSITORY,
        env=service.env,
        capture_output=True,
        text=True,
        timeout=CLI_DEADLINE_S,
        check=False,
    )


async def create_business(service: LedgerService, *extra: str) -> dict[str, Any]:
    """`ledger business create NAME --json`, parsed; fails the test if the CLI fails."""
    name = f"E2E Business {uuid.uuid4().hex[:8]}"
    done = await run_cli(service, "business", "create", name, "--json", *extra)
    assert done.returncode == 0, done.stderr
    created: dict[str, Any] = json.loads(done.stdout)
    await _wait_until_projected(service, created)
    return created


async def _wait_until_projected(
    service: LedgerService, business: dict[str, Any]
) -> None:
    """Wait until the read models show what the CLI wrote (its "Uncategorised"
    category): the CLI commits and exits without read-your-writes, so a test listing
    the categories at once could otherwise find none."""
    conn = await asyncpg.connect(service.environment.admin_url)
    try:
        position = await last_position(conn, business["business_id"])
    finally:
        await conn.close()
    async with aiohttp.ClientSession(
        base_url=service.base_url, timeout=aiohttp.ClientTimeout(total=30)
    ) as http:
        await Api(http, str(business["api_key"])).wait_for_position(position)


async def last_position(
    pool: asyncpg.Pool | asyncpg.Connection, business_id: int
) -> int:
    """The position of the business's latest event in the store: the exact
    X-Ledger-Position of the command that wrote it, while nothing else writes for
    the business."""
    position = await pool.fetchval(
        "SELECT max(position) FROM events WHERE business_id = $1", business_id
    )
    return int(position)


async def event_count(pool: asyncpg.Pool, business_id: int) -> int:
    """How many events the business has in the store."""
    count = await pool.fetchval(
        "SELECT count(*) FROM events WHERE business_id = $1", business_id
    )
    return int(count)
