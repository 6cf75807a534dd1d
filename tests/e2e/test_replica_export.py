"""A 100,000-client export read from the hot standby while postings run: it finishes
there (hot_standby_feedback: replay never cancels it), exact to the row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.bench.imports import build_file
from tests.e2e.deadlines import wait_until
from tests.e2e.ledger_api import Api
from tests.e2e.supervisor import LedgerService, create_business, running
from tests.integration.metrics_samples import family, parse
from tests.support.spreadsheets import sheet_xml
from tests.support.standby import require_standby, standby_caught_up
from tests.support.workbooks import form

CLIENTS = 100_000
IMPORT_DEADLINE_S = 600.0


@pytest.fixture(scope="module")
async def replicated(
    servers: tuple[str, str], log_directory: Path
) -> AsyncIterator[LedgerService]:
    await require_standby()
    log_path = log_directory / "ledger-run-replica-export.log"
    async with running(servers, log_path, "replexp", replica=True) as service:
        yield service


async def _replica_counters(http: aiohttp.ClientSession) -> tuple[float, float]:
    async with http.get("/metrics") as answer:
        samples = parse(await answer.text())
    [reads] = family(samples, "ledger_replica_reads_total").values()
    [fallbacks] = family(samples, "ledger_replica_fallbacks_total").values()
    return reads, fallbacks


async def _imported(api: Api) -> None:
    """CLIENTS clients through the spreadsheet import (events, then the projectors),
    waited for until the import reports `done`."""
    async with api.http.post(
        "/api/v3/clients/import", data=form(build_file(CLIENTS)), headers=api.headers()
    ) as answer:
        body = await answer.json()
        assert answer.status in (201, 202), body

    async def done() -> bool:
        await asyncio.sleep(0.5)
        report = await api.get(f"/api/v3/clients/imports/{body['import_id']}")
        return report.status == 200 and report.body["status"] == "done"  # type: ignore[index]

    await wait_until(done, IMPORT_DEADLINE_S, "the import to be done")


async def _post_until(api: Api, stop: asyncio.Event) -> list[int]:
    """Debits to one client of another business until `stop`: their statuses."""
    client = await api.create_client(business_name="Posting meanwhile")
    statuses = []
    while not stop.is_set():
        posted = await api.post(
            f"/api/v3/clients/{client['id']}/transactions",
            {"type": "debit", "amount": "1.00"},
        )
        statuses.append(posted.status)
    return statuses


async def test_a_100000_client_export_finishes_on_the_standby_while_postings_run(
    replicated: LedgerService,
) -> None:
    """Proves long reads stay on the standby: 100,000 clients imported, the standby
    caught up, then the export (a bid, no key) is read while two writers of another
    business post; it holds exactly 100,000 rows, /metrics counts exactly one read
    on the replica (the export: the postings read nothing) and no fallback to the
    primary, and every posting answered 201."""
    timeout = aiohttp.ClientTimeout(total=IMPORT_DEADLINE_S)
    async with aiohttp.ClientSession(replicated.base_url, timeout=timeout) as http:
        exporter = await create_business(replicated)
        await _imported(Api(http, exporter["api_key"]))
        primary = await asyncpg.connect(replicated.environment.admin_url)
        try:
            await standby_caught_up(primary)  # type: ignore[arg-type]
        finally:
            await primary.close()
        poster = Api(http, (await create_business(replicated))["api_key"])
        reads, fallbacks = await _replica_counters(http)
        stop = asyncio.Event()
        writers = [asyncio.ensure_future(_post_until(poster, stop)) for _ in range(2)]
        try:
            async with http.get(
                f"/api/v3/clients/clients-print/{exporter['bid']}"
            ) as answer:
                raw = await answer.read()
                assert answer.status == 200, raw[:500]
        finally:
            stop.set()
            statuses = [s for writer in await asyncio.gather(*writers) for s in writer]
        assert sheet_xml(raw).count("<row ") == CLIENTS + 1  # the header row too
        assert await _replica_counters(http) == (reads + 1, fallbacks)
        assert statuses and set(statuses) == {201}
