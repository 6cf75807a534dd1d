"""An import's COMMIT whose reply is lost is settled like every write's.

The import commits through the same transaction as the appender's batches
(services/command_api/commit.py), so when PostgreSQL applies its COMMIT but the reply
never reaches the API, the API asks the store (`pg_xact_status`) instead of answering
503 for an import that was written. A real `ledger api` is held just before the
import's COMMIT (LEDGER_TEST_PAUSE_AT) and reaches PostgreSQL through a proxy that
drops that one reply and closes the connection.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from services.cli.businesses import provision_business
from tests.e2e.api_processes import ApiProcess, ApiProcesses
from tests.e2e.commit_cutter import CommitCutter
from tests.e2e.test_commit_unknown import (  # noqa: F401 (fixtures)
    _events_with_key,
    api_processes,
    cutter,
    own,
)
from tests.support.environment import Environment
from tests.support.workbooks import HEADER, form, workbook

SHEET = [HEADER, ["Cut at commit", None, None, None, "12.50"]]


async def _keyed_import(api: ApiProcess, api_key: str, key: str, raw: bytes) -> Any:
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Idempotency-Key": key,
        "Prefer": "respond-async",
    }
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
        http.post(
            api.base_url + "/api/v3/clients/import",
            data=form(raw),
            headers=headers,
        ) as response,
    ):
        return response.status, response.headers, await response.read()


async def test_an_import_whose_commit_reply_is_lost_answers_its_own_result_once(
    own: Environment,  # noqa: F811
    api_processes: ApiProcesses,  # noqa: F811
    cutter: CommitCutter,  # noqa: F811
) -> None:
    """The first answer is the import's own 202 (not a 503) over its three events,
    and the keyed retry replays it byte for byte without writing again."""
    port = await cutter.start()
    parts = urlsplit(own.settings.database_url)
    through_proxy = parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}")
    business = await provision_business(own.settings, f"Cut {uuid.uuid4().hex[:8]}")
    api_key, key = str(business["api_key"]), str(uuid.uuid4())
    api = await api_processes.start(
        own,
        "paused",
        {
            "LEDGER_TEST_PAUSE_AT": "api.before_commit",
            "LEDGER_DATABASE_URL": through_proxy.geturl(),
        },
    )
    raw_file = workbook("openpyxl", SHEET)  # one file: a retry sends the same bytes
    pending = asyncio.ensure_future(_keyed_import(api, api_key, key, raw_file))
    await api.wait_for_log("test pause at api.before_commit")
    cutter.arm()
    api.release()
    status, headers, raw = await pending
    assert cutter.reply_lost.is_set()
    assert (status, "Idempotent-Replayed" in headers) == (202, False), raw
    assert json.loads(raw)["imported"] == 1
    events = ["clients.imported", "client.created", "transaction.posted"]
    assert await _events_with_key(own, key) == events
    again = await _keyed_import(api, api_key, key, raw_file)
    again_status, again_headers, again_raw = again
    assert (again_status, again_headers["Idempotent-Replayed"]) == (202, "true")
    assert again_raw == raw
    assert await _events_with_key(own, key) == events
