"""`ledger run` with the local hot standby as its read replica
(LEDGER_READ_DATABASE_URLS), over real sockets: a replica stopped mid-load costs the
callers nothing, and a write answered by one API process is read by another even
when the first one took the replica out of rotation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.api_processes import ApiProcesses
from tests.e2e.deadlines import wait_until
from tests.e2e.ledger_api import Api
from tests.e2e.supervisor import LedgerService, create_business, running
from tests.integration.metrics_samples import family, parse
from tests.support.standby import (
    paused_standby,
    replica_url,
    require_standby,
    standby_restored,
    start_standby,
    stop_standby,
)

WRITERS = 6
ROUNDS = 30
JOIN_DEADLINE_S = 60.0


@pytest.fixture(scope="module")
async def replicated(
    servers: tuple[str, str], log_directory: Path
) -> AsyncIterator[LedgerService]:
    await require_standby()
    log_path = log_directory / "ledger-run-replicas.log"
    async with running(servers, log_path, "replicas", replica=True) as service:
        yield service


@pytest.fixture
def api_processes(tmp_path: Path) -> Iterator[ApiProcesses]:
    processes = ApiProcesses(tmp_path)
    yield processes
    processes.stop_all()


async def _replica(http: aiohttp.ClientSession) -> dict[str, Any]:
    async with http.get("/readyz") as answer:
        body = await answer.json()
        assert answer.status == 200, body
    [replica] = body["replicas"]
    return dict(replica)


async def _in_rotation(http: aiohttp.ClientSession) -> None:
    async def joined() -> bool:
        return (await _replica(http))["in_rotation"] is True

    await wait_until(joined, JOIN_DEADLINE_S, "the standby in rotation")


async def _replica_counters(http: aiohttp.ClientSession) -> tuple[float, float]:
    """The reads the replica answered, and those the primary answered instead (sent
    there and fallen back, or sent straight there), from /metrics (`ledger run`
    starts one API process on this machine: all of them)."""
    async with http.get("/metrics") as answer:
        samples = parse(await answer.text())
    [reads] = family(samples, "ledger_replica_reads_total").values()
    [fallbacks] = family(samples, "ledger_replica_fallbacks_total").values()
    [bypasses] = family(samples, "ledger_replica_bypasses_total").values()
    return reads, fallbacks + bypasses


async def _writer(api: Api, progress: list[int]) -> list[tuple[int, int, Decimal]]:
    """A client, then ROUNDS debits of 1.00, each followed at once by a GET of the
    client: each POST's status, the GET's status and the balance it showed."""
    client = await api.create_client(business_name="Under load")
    seen = []
    for _ in range(ROUNDS):
        posted = await api.post(
            f"/api/v3/clients/{client['id']}/transactions",
            {"type": "debit", "amount": "1.00"},
        )
        read = await api.get(f"/api/v3/clients/{client['id']}")
        assert isinstance(read.body, dict)
        seen.append((posted.status, read.status, read.body["unformated_balance"]))
        progress[0] += 1
    return seen


async def _stop_and_start_the_standby(progress: list[int]) -> None:
    """Stop the standby (pg_ctl -m fast) a third of the way in, start it again at two
    thirds."""
    total = WRITERS * ROUNDS

    async def reached(share: float) -> bool:
        await asyncio.sleep(0.02)
        return progress[0] >= total * share

    await wait_until(lambda: reached(1 / 3), JOIN_DEADLINE_S, "a third of the load")
    await stop_standby()
    await wait_until(lambda: reached(2 / 3), JOIN_DEADLINE_S, "two thirds of the load")
    await start_standby()


async def test_a_replica_stopped_mid_load_costs_the_callers_nothing(
    replicated: LedgerService,
) -> None:
    """Proves the fallback: 6 writers post and read back 30 times each through `ledger
    run` while the standby is stopped with pg_ctl -m fast (reads in flight on it fail
    and go to the primary, it leaves the rotation) and started again; every POST
    answers 201 and every GET 200 with exactly the balance so far, reads were served
    by the standby and others by the primary in its stead (fallen back if in flight
    at the stop, which is chance; sent straight there while it was out, which is
    not), and the standby comes back into rotation. A writer that fails cancels the
    stop and start (a task group) before the standby is restored."""
    async with aiohttp.ClientSession(
        base_url=replicated.base_url, timeout=aiohttp.ClientTimeout(total=60)
    ) as http:
        await _in_rotation(http)
        business = await create_business(replicated)
        api = Api(http, business["api_key"])
        progress = [0]
        reads, on_primary = await _replica_counters(http)
        async with standby_restored(), asyncio.TaskGroup() as group:
            writers = [
                group.create_task(_writer(api, progress)) for _ in range(WRITERS)
            ]
            group.create_task(_stop_and_start_the_standby(progress))
        expected = [(201, 200, Decimal(n)) for n in range(1, ROUNDS + 1)]
        assert [writer.result() for writer in writers] == [expected] * WRITERS
        reads_after, on_primary_after = await _replica_counters(http)
        assert reads_after > reads
        assert on_primary_after > on_primary
        await _in_rotation(http)


async def test_a_write_one_process_answers_is_read_by_another_while_the_replica_leaves(
    replicated: LedgerService, api_processes: ApiProcesses
) -> None:
    """Proves the rotation is one across API processes: two `ledger api` processes
    share the standby. With its replay paused, process A answers each POST only once
    the replica is out and every view that showed it in has aged out, so process B's
    GET right after never reads the paused standby: it shows each write."""
    read_urls = {"LEDGER_READ_DATABASE_URLS": replica_url(replicated.environment)}
    first = await api_processes.start(replicated.environment, "a", read_urls)
    second = await api_processes.start(replicated.environment, "b", read_urls)
    business = await create_business(replicated)
    sessions = [
        aiohttp.ClientSession(
            base_url=api.base_url, timeout=aiohttp.ClientTimeout(total=60)
        )
        for api in (first, second)
    ]
    try:
        writer, reader = (Api(http, business["api_key"]) for http in sessions)
        for http in sessions:
            await _in_rotation(http)
        client = await writer.create_client(business_name="Across")
        async with standby_restored(), paused_standby():
            for n in range(1, 4):
                posted = await writer.post(
                    f"/api/v3/clients/{client['id']}/transactions",
                    {"type": "debit", "amount": "1.00"},
                )
                assert posted.status == 201, posted.body
                read = await reader.get(f"/api/v3/clients/{client['id']}")
                assert isinstance(read.body, dict)
                assert read.body["unformated_balance"] == Decimal(n)
            assert (await _replica(sessions[1]))["state"] == "out"
        for http in sessions:
            await _in_rotation(http)
    finally:
        for http in sessions:
            await http.close()
