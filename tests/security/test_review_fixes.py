"""The review's findings: the read-your-writes waiter outlives an exhausted pool, a
killed fold worker does not break audits and `as_of` for good, and a client that
never reads an export does not hold its business's expensive-work slot."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from services.http.edge import POOL
from services.http.projection_wait import WAITER
from tests.integration.scenarios import wait_until
from tests.security.conftest import ServiceWith
from tests.security.test_fair_use_workers import is_alive, workers_of
from tests.support.environment import (
    Environment,
    create_environment,
    drop_environment,
)
from tests.support.service import http_client

# Clients of incompressible text: a workbook of 5.6 MB, more than the kernels' buffers
# take for a client that never reads (its send stalled after 1.7 MB on loopback; the
# API's send buffer grows to 4 MiB at most, net.ipv4.tcp_wmem), so the send stalls
# for as long as the client does not read.
STALLED_EXPORT_CLIENTS = 45_000
INSERT_CLIENTS = """
INSERT INTO rm_clients (client_id, business_id, account_id, category_id, first_name,
    last_name, phone_number, business_name, business_address, business_phone,
    business_location, business_email, created_at, updated_at, version)
SELECT i, $1, i, 0, md5('f' || i), md5('l' || i), md5('p' || i), md5('n' || i),
    md5('a' || i), md5('b' || i), md5('c' || i), md5('e' || i), now(), now(), 1
FROM generate_series(1, $2) AS i
"""


async def test_a_command_after_an_exhausted_pool_is_answered_201(
    service: TestClient, service_with: ServiceWith, business: dict[str, Any]
) -> None:
    """Proves the read-your-writes waiter survives PoolExhausted: with both
    connections of a two-connection pool held past the 0.2 s acquire timeout while a
    waiter waits, its checks fail; once they are released a new command (projectors
    run, `service`) is answered 201, not 202 after the full wait."""
    settings = {"api_pool_size_max": 2, "pool_acquire_timeout_s": 0.2}
    async with service_with(**settings) as client:
        pool, waiter = client.app[POOL], client.app[WAITER]
        async with pool.acquire(timeout=5), pool.acquire(timeout=5):
            # Never applied: the waiter keeps checking, and every check waits for
            # a connection past the acquire timeout.
            assert await waiter.wait_for_stream("client-424242", 1, 0.6) is False
        created = await client.post(
            "/api/v3/clients",
            json={"business_name": "After the pool"},
            headers=business["headers"],
        )
        assert created.status == 201, await created.text()


async def test_a_killed_fold_worker_costs_one_503_then_audits_are_served(
    service_with: ServiceWith, business: dict[str, Any]
) -> None:
    """Proves a fold worker SIGKILLed (as the OOM killer would) does not break audit
    verify for good: with one fold worker, the audit after the kill is answered 503
    with Retry-After (the broken pool is replaced) and the next one 200 with the
    same report as before the kill, where a plain pool answered 500 for ever."""
    others = set(workers_of(os.getpid()))  # other apps' pools in this session
    async with service_with(fold_processes=1) as client:
        headers = business["headers"]
        before = await client.get("/api/v3/audit/verify", headers=headers)
        assert before.status == 200, await before.text()
        report = await before.json()
        [worker] = set(workers_of(os.getpid())) - others
        os.kill(worker, signal.SIGKILL)

        async def worker_gone() -> bool:
            return not is_alive(worker)

        await wait_until(worker_gone, "the fold worker to die")
        lost = await client.get("/api/v3/audit/verify", headers=headers)
        assert (lost.status, lost.headers.get("Retry-After")) == (503, "1")
        assert await lost.json() == {"message": "A worker process was lost; retry"}
        after = await client.get("/api/v3/audit/verify", headers=headers)
        assert after.status == 200, await after.text()
        assert await after.json() == report


@pytest.fixture
async def big_export(
    servers: tuple[str, str],
) -> AsyncIterator[tuple[Environment, dict[str, Any]]]:
    """A database of its own (its read model is written directly, so no other test
    sees the rows) with one business of STALLED_EXPORT_CLIENTS clients."""
    env = await create_environment(*servers, tag="sendstall")
    try:
        business = await provision_business(env.settings, "Big export")
        business["headers"] = {"Authorization": f"Bearer {business['api_key']}"}
        conn = await asyncpg.connect(env.admin_url)
        try:
            await conn.execute(
                INSERT_CLIENTS, business["business_id"], STALLED_EXPORT_CLIENTS
            )
        finally:
            await conn.close()
        yield env, business
    finally:
        await drop_environment(env)


async def _stalled_export(client: TestClient, bid: str) -> socket.socket:
    """A client that asks for the export and never reads: its receive buffer is as
    small as the kernel allows, so the window closes after a few KB."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (str(client.server.host), int(client.server.port)))
    request = (
        f"GET /api/v3/clients/clients-print/{bid} HTTP/1.1\r\nHost: ledger\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())

    async def answered() -> bool:  # the workbook is written: its headers are sent
        try:
            return sock.recv(12, socket.MSG_PEEK) == b"HTTP/1.1 200"
        except BlockingIOError:
            return False

    await wait_until(answered, "the export's headers", timeout_s=60)
    return sock


def _exports() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("ledger-export-*"))


async def test_a_client_that_never_reads_its_export_holds_no_expensive_slot(
    big_export: tuple[Environment, dict[str, Any]],
) -> None:
    """Proves the export leaves its business's expensive-work slot once the workbook
    is written: with one slot per business, while a client that never reads holds
    its export's send (a 600 s send timeout), an audit of the business is 200."""
    env, business = big_export
    settings = msgspec.structs.replace(
        env.settings, expensive_work_per_business_max=1, http_send_timeout_s=600.0
    )
    async with http_client(settings) as client:
        sock = await _stalled_export(client, business["bid"])
        try:
            audit = await client.get(
                "/api/v3/audit/verify", headers=business["headers"]
            )
            assert audit.status == 200, await audit.text()
        finally:
            sock.close()


async def test_a_stalled_export_is_cut_after_the_send_timeout(
    big_export: tuple[Environment, dict[str, Any]],
) -> None:
    """Proves a client that takes nothing for LEDGER_HTTP_SEND_TIMEOUT_S (1 s here)
    is cut: its workbook file is removed and it gets fewer bytes than announced."""
    env, business = big_export
    settings = msgspec.structs.replace(env.settings, http_send_timeout_s=1.0)
    before = _exports()
    async with http_client(settings) as client:
        sock = await _stalled_export(client, business["bid"])
        try:

            async def removed() -> bool:
                return not _exports() - before

            await wait_until(removed, "the stalled export's file to be removed")
            received = await _read_to_end(sock)
        finally:
            sock.close()
    head, _, body = received.partition(b"\r\n\r\n")
    announced = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    assert announced is not None
    assert len(body) < int(announced[1])


async def _read_to_end(sock: socket.socket) -> bytes:
    loop, received = asyncio.get_running_loop(), bytearray()
    try:
        while piece := await loop.sock_recv(sock, 65536):
            received += piece
    except ConnectionResetError:
        pass
    return bytes(received)
