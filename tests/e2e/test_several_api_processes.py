"""Several API processes (issue 15): `ledger run --api-processes 2` serves one port
from two processes and replaces one that is killed while the other serves on;
`ledger api` with LEDGER_API_PROCESSES=2 (compose) does the same alone; a count
PostgreSQL has no connections for stops the start with a message."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.e2e.api_processes import ApiProcesses
from tests.e2e.deadlines import (
    CLI_DEADLINE_S,
    START_DEADLINE_S,
    STOP_DEADLINE_S,
    wait_until,
)
from tests.e2e.supervisor import (
    REPOSITORY,
    LedgerService,
    children_of,
    create_business,
    is_running,
    running,
)
from tests.support.environment import (
    create_environment,
    drop_environment,
    free_port,
    service_environment,
)

pytestmark = pytest.mark.skipif(
    not Path("/proc").is_dir(), reason="lists children through /proc"
)
REQUESTS = 40


def _roles(supervisor: int) -> dict[int, str]:
    """The supervisor's children: pid -> role (`api`, `relay`, ...)."""
    roles = {}
    for child in children_of(supervisor):
        argv = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
        roles[child] = " ".join(argv[3:-1])
    return roles


def _listening(port: int) -> set[str]:
    """The sockets listening on `port` (from /proc/net/tcp, where state 0A is
    LISTEN), as a file descriptor links to them: `socket:[inode]`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
            inodes.add(f"socket:[{fields[9]}]")
    return inodes


def _sockets_listening(pid: int, port: int) -> set[str]:
    """Those of process `pid` (from its file descriptors)."""
    inodes = _listening(port)
    descriptors = Path(f"/proc/{pid}/fd")
    try:
        return {os.readlink(fd) for fd in descriptors.iterdir()} & inodes
    except FileNotFoundError:
        return set()


def _listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds a socket listening on `port`."""
    return bool(_sockets_listening(pid, port))


async def _statuses(base_url: str, api_key: str) -> list[int]:
    """REQUESTS GETs of the categories, each on a new connection (the kernel picks
    the listening process per connection), four at a time."""
    headers = {"Authorization": f"Bearer {api_key}", "Connection": "close"}
    async with aiohttp.ClientSession(
        base_url=base_url,
        connector=aiohttp.TCPConnector(force_close=True, limit=4),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as http:

        async def one() -> int:
            async with http.get("/api/v3/clients/categories", headers=headers) as got:
                return got.status

        return list(await asyncio.gather(*(one() for _ in range(REQUESTS))))


async def test_two_api_processes_share_the_port_and_one_killed_is_replaced(
    servers: tuple[str, str], tmp_path: Path
) -> None:
    """`ledger run --api-processes 2` starts two `ledger api` children beside the
    four workers, both listening on the one port (from /proc; neither exits on
    EADDRINUSE); 40 requests on new connections all answer 200; with one API child
    SIGKILLed and its listening socket gone (connections the kernel queued on it
    before are reset, which is the kill, not the other process), 40 more all answer
    200 from the other, the supervisor starts a new API child that listens on the
    port in its place, and 40 more all answer 200."""
    async with running(
        servers, tmp_path / "run.log", "apiprocs", arguments=("--api-processes", "2")
    ) as service:
        roles = _roles(service.process.pid)
        port = int(service.base_url.rsplit(":", 1)[1])

        async def both_listen() -> bool:  # /healthz needed only one of them
            return [_listens(pid, port) for pid in roles] == [
                role == "api" for role in roles.values()
            ]

        await wait_until(both_listen, START_DEADLINE_S, "both API children listen")
        assert sorted(roles.values()) == sorted(
            ["api", "api", "relay", "projector", "monitor", "webhooks"]
        )
        business: dict[str, Any] = await create_business(service)
        api_key = str(business["api_key"])
        assert await _statuses(service.base_url, api_key) == [200] * REQUESTS
        assert sorted(_roles(service.process.pid)) == sorted(roles)  # none restarted
        killed, _ = [pid for pid, role in roles.items() if role == "api"]
        its_sockets = _sockets_listening(killed, port)
        os.kill(killed, signal.SIGKILL)

        async def closed() -> bool:  # connections queued on it would be reset
            return not its_sockets & _listening(port)

        await wait_until(closed, STOP_DEADLINE_S, "the killed child's socket closes")
        assert await _statuses(service.base_url, api_key) == [200] * REQUESTS

        async def replaced() -> bool:
            now = _roles(service.process.pid)
            apis = [pid for pid, role in now.items() if role == "api"]
            return (
                len(apis) == 2
                and killed not in apis
                and all(_listens(pid, port) for pid in apis)
            )

        await wait_until(replaced, START_DEADLINE_S, "a new API child listens")
        assert await _statuses(service.base_url, api_key) == [200] * REQUESTS


async def test_more_api_processes_than_postgresql_has_connections_for_stop_the_start(
    servers: tuple[str, str], tmp_path: Path
) -> None:
    """`ledger run --api-processes 5` with pools just large enough that 5 x (pool +
    2 + 2 fold workers) + 16 for the workers exceeds what the server allows (its
    max_connections less superuser_reserved_connections, asked here: 97 on a default
    server, where pools of 20 give 136): it exits 2 at once with those figures and
    the three ways out, and starts no child."""
    available = await _connections_available(servers[0])
    pool_size = max(20, (available - 16) // 5 - 3)  # the least that cannot fit
    each = pool_size + 4
    assert 5 * each + 16 > available
    environment = await create_environment(*servers, tag="apiprocs-budget")
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.cli.main", "run", "--api-processes", "5"],
            cwd=REPOSITORY,
            env={
                **service_environment(environment, free_port()),
                "LEDGER_API_POOL_SIZE_MAX": str(pool_size),
            },
            capture_output=True,
            text=True,
            timeout=CLI_DEADLINE_S,
            check=False,
        )
    finally:
        await drop_environment(environment)
    assert done.returncode == 2, done.stderr
    assert (
        f"ledger: 5 API processes need up to 5 x {each} PostgreSQL connections"
        f" (LEDGER_API_POOL_SIZE_MAX={pool_size} + 2 + LEDGER_FOLD_PROCESSES=2) + 16"
        f" for the workers, {5 * each + 16} in all; the server allows {available}"
        " (max_connections less superuser_reserved_connections). Run fewer"
        " (--api-processes, LEDGER_API_PROCESSES), lower LEDGER_API_POOL_SIZE_MAX,"
        " or raise max_connections.\n"
    ) in done.stderr


async def _connections_available(server_url: str) -> int:
    """The server's max_connections less superuser_reserved_connections."""
    conn = await asyncpg.connect(server_url)
    try:
        maximum = int(await conn.fetchval("SHOW max_connections"))
        reserved = int(await conn.fetchval("SHOW superuser_reserved_connections"))
    finally:
        await conn.close()
    return maximum - reserved


async def test_ledger_api_with_two_processes_supervises_two_on_its_port(
    ledger: LedgerService, tmp_path: Path
) -> None:
    """`ledger api` with LEDGER_API_PROCESSES=2 (as the compose file runs it) starts
    two `ledger api` children that both listen on its port and serve, and stops both
    on SIGTERM, exiting 0."""
    processes = ApiProcesses(tmp_path)
    try:
        supervisor = await processes.start(
            ledger.environment, "pair", {"LEDGER_API_PROCESSES": "2"}
        )
        port = int(supervisor.base_url.rsplit(":", 1)[1])

        async def both_listen() -> bool:
            roles = _roles(supervisor.process.pid)
            return sorted(roles.values()) == ["api", "api"] and all(
                _listens(pid, port) for pid in roles
            )

        await wait_until(both_listen, START_DEADLINE_S, "two API children listen")
        business: dict[str, Any] = await create_business(ledger)
        statuses = await _statuses(supervisor.base_url, str(business["api_key"]))
        assert statuses == [200] * REQUESTS
        children = list(_roles(supervisor.process.pid))
        supervisor.process.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(supervisor.process.wait, STOP_DEADLINE_S)
        assert returncode == 0, supervisor.log()[-4000:]
        assert [child for child in children if is_running(child)] == []
    finally:
        processes.stop_all()
