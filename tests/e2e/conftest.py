"""End to end: the real `ledger run` supervisor and its child processes, over HTTP.

One session starts `python -m services.cli.main run` exactly as `make run` does
(migrate,
then API, relay and one projector per projection as child processes) against a
throwaway database and uniquely named exchange and queues, on a free port. Tests drive
it with aiohttp over real sockets and create their businesses with the real CLI.
Everything that must become true is waited for on a deadline, never with a bare sleep.

The service's output goes to `ledger-run.log` under pytest's temporary directory;
LEDGER_E2E_LOG_LEVEL (default WARNING) sets its log level.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest

from tests.support.environment import (
    READ_YOUR_WRITES_TIMEOUT_S,
    Environment,
    create_environment,
    drop_environment,
    free_port,
    service_environment,
)

REPOSITORY = Path(__file__).resolve().parents[2]
START_DEADLINE_S = 60.0
# Below the supervisor's own 15 s SIGKILL deadline (services/cli/processes.py): stopping
# within it means every child ended on its SIGTERM instead of being killed.
STOP_DEADLINE_S = 10.0
CLI_DEADLINE_S = 60.0
# How long a helper waits for an accepted (202) write to become visible: several
# read-your-writes bounds, so that only a projector that stopped fails a test.
VISIBLE_DEADLINE_S = 6 * READ_YOUR_WRITES_TIMEOUT_S
POLL_S = 0.05

# The seed's client object, field for field and in the seed's order.
CLIENT_FIELDS = [
    "id",
    "owner_id",
    "business_id",
    "first_name",
    "last_name",
    "phone_number",
    "business_name",
    "business_address",
    "business_phone",
    "business_location",
    "business_email",
    "created_at",
    "updated_at",
    "account_id",
    "category",
    "category_id",
    "deposit_amount",
    "deposit_account_id",
    "archived",
    "transactions",
    "unformated_balance",
    "balance",
    "total_debit",
    "total_credit",
]
CATEGORY_FIELDS = [
    "id",
    "business_id",
    "name",
    "description",
    "created_at",
    "updated_at",
    "archived",
    "customer_count",
]
SUMMARY_FIELDS = [
    "total_deposits",
    "customer_count",
    "archived_customers",
    "unarchived_customers",
    "total_balance",
]
TRANSACTION_FIELDS = [
    "id",
    "client_id",
    "type",
    "amount",
    "date",
    "description",
    "reference",
    "created_at",
    "balance_after",
    "reversed",
    "reversal_of",
]
DEPOSIT_FIELDS = [
    "id",
    "client_id",
    "type",
    "amount",
    "date",
    "description",
    "created_at",
    "deposit_after",
    "reversed",
    "reversal_of",
]
TIMESTAMP_PATTERN = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z"
INVALID = "The given data was invalid."


def invalid(errors: dict[str, list[str]]) -> dict[str, object]:
    """The Laravel 422 body for the given field errors."""
    return {"message": INVALID, "errors": errors}


class Reply(msgspec.Struct, frozen=True):
    """One HTTP answer: status, headers (case-insensitive) and body (JSON or text)."""

    status: int
    headers: Any
    body: Any
    raw: bytes


class Api:
    """The HTTP API with one business's key: each call returns a Reply."""

    def __init__(self, http: aiohttp.ClientSession, key: str | None) -> None:
        self.http = http
        self.key = key

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        headers.update(extra or {})
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: object = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Reply:
        kwargs: dict[str, Any] = {"headers": self.headers(headers), "params": params}
        if json_body is not None:
            kwargs["json"] = json_body
        if data is not None:
            kwargs["data"] = data
        async with self.http.request(method, path, **kwargs) as response:
            raw = await response.read()
            body: object = raw.decode("utf-8", "replace")
            if response.content_type == "application/json":
                # Decimal, so that money is compared exactly as written on the wire.
                body = json.loads(raw, parse_float=Decimal)
            return Reply(
                status=response.status, headers=response.headers, body=body, raw=raw
            )

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, body: object = None, **kwargs: Any) -> Reply:
        return await self.request("POST", path, json_body=body, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("DELETE", path, **kwargs)

    async def written(self, path: str, body: object) -> dict[str, Any]:
        """POST a write a test builds on, whose claim is not the 201 itself: a 202
        (committed, but the read models were not there within the read-your-writes
        bound on a loaded machine) is waited out with X-Ledger-Min-Position, so what
        the test reads next shows the write either way. Tests about the 201 post and
        assert it themselves."""
        reply = await self.post(path, body)
        assert reply.status in (201, 202), reply.body
        if reply.status == 202:
            await self.wait_for_position(int(reply.headers["X-Ledger-Position"]))
        return reply.body  # type: ignore[no-any-return]

    async def wait_for_position(self, position: int) -> None:
        """Wait on a deadline until the read models have reached `position` (each
        query waits up to the bound server-side, then answers 503 to ask again)."""
        header = {"X-Ledger-Min-Position": str(position)}

        async def reached() -> bool:
            reply = await self.get("/api/v3/clients/summary", headers=header)
            assert reply.status in (200, 503), reply.body
            return reply.status == 200

        await wait_until(reached, VISIBLE_DEADLINE_S, f"read models at {position}")

    async def create_client(self, **fields: object) -> dict[str, Any]:
        return await self.written(
            "/api/v3/clients", {"business_name": "Client", **fields}
        )

    async def post_transaction(
        self, client_id: int, entry_type: str, amount: object, **fields: object
    ) -> dict[str, Any]:
        return await self.written(
            f"/api/v3/clients/{client_id}/transactions",
            {"type": entry_type, "amount": amount, **fields},
        )

    async def post_deposit(
        self, client_id: int, entry_type: str, amount: object, **fields: object
    ) -> dict[str, Any]:
        return await self.written(
            f"/api/v3/clients/{client_id}/deposits",
            {"type": entry_type, "amount": amount, **fields},
        )

    async def create_category(self, name: str, description: str = "") -> dict[str, Any]:
        return await self.written(
            "/api/v3/clients/category", {"name": name, "description": description}
        )


class LedgerService(msgspec.Struct, kw_only=True):
    """The running supervisor and what a test needs to reach it."""

    environment: Environment
    process: subprocess.Popen[bytes]
    base_url: str
    env: dict[str, str]
    log_path: Path

    def log_tail(self, characters: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:]


def start_supervisor(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`python -m services.cli.main run`, as `make run` starts it, output to
    `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "run"],
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


async def wait_until(
    check: Callable[[], Awaitable[bool]], deadline_s: float, what: str
) -> None:
    """Poll `check` until it is true; fail with `what` when the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {deadline_s} s: {what}")
        await asyncio.sleep(POLL_S)


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


@pytest.fixture(scope="session")
def log_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where `ledger run` writes its output (pytest keeps the last few runs' copies)."""
    return tmp_path_factory.mktemp("ledger-run")


def launch(
    environment: Environment,
    log_path: Path,
    overrides: dict[str, str] | None = None,
) -> LedgerService:
    """Start `ledger run` on a free port against the environment, as `make run` does
    (with `overrides` added to its environment)."""
    port = free_port()
    env = service_environment(
        environment, port, os.environ.get("LEDGER_E2E_LOG_LEVEL", "WARNING")
    )
    env.update(overrides or {})
    return LedgerService(
        environment=environment,
        process=start_supervisor(env, log_path),
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
) -> AsyncIterator[LedgerService]:
    """`ledger run` on a free port against a throwaway environment, until the block
    ends (once /healthz and /readyz answer 200).

    The end sends SIGINT (Ctrl-C) and asserts the supervisor stops every child and
    exits 0 within the deadline, then drops the database, exchange and queues."""
    environment = await create_environment(*servers, tag=tag)
    service = launch(environment, log_path, overrides)
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


@pytest.fixture(scope="session")
async def ledger(
    servers: tuple[str, str], log_directory: Path
) -> AsyncIterator[LedgerService]:
    """`ledger run` for the session (see `running`)."""
    async with running(servers, log_directory / "ledger-run.log", "e2e") as service:
        yield service


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


@pytest.fixture(scope="session")
async def http(ledger: LedgerService) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        base_url=ledger.base_url, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        yield session


@pytest.fixture(scope="session")
async def admin_pool(ledger: LedgerService) -> AsyncIterator[asyncpg.Pool]:
    """A superuser pool on the service's database, to look at the event store."""
    pool = await asyncpg.create_pool(
        ledger.environment.admin_url, min_size=1, max_size=2
    )
    yield pool
    await pool.close()


@pytest.fixture
async def business(ledger: LedgerService) -> dict[str, Any]:
    """A fresh business made by the real CLI: nothing else in it but "Uncategorised"."""
    return await create_business(ledger)


@pytest.fixture
def api(http: aiohttp.ClientSession, business: dict[str, Any]) -> Api:
    """The API with the fresh business's key."""
    return Api(http, str(business["api_key"]))


@pytest.fixture
def anonymous(http: aiohttp.ClientSession) -> Api:
    """The API without any key."""
    return Api(http, None)


def today() -> dt.date:
    """The service's idea of today: the UTC calendar date."""
    return dt.datetime.now(dt.UTC).date()


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
