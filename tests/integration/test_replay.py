"""`ledger replay`: read models rebuilt from the events answer byte for byte as before,
the API answers from the old model throughout, and the projectors go on afterwards.

Runs on a database of its own (a replay rebuilds every business's read models, and
other tests tamper with theirs on purpose), with the in-process service on it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from services.audit.verify import verify
from services.cli.businesses import provision_business
from services.replay.rebuild import replay
from shared.key_settings import settings_keyring
from shared.store.postgres import create_pool
from tests.support.environment import Environment, create_environment, drop_environment
from tests.support.service import http_client, workers
from tests.support.workbooks import HEADER, form, openpyxl_file

IMPORTED = 900  # rows: each a client.created, an opening debit or credit, a deposit


@pytest.fixture(scope="module")
async def replayed(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    env = await create_environment(*servers, tag="replay")
    yield env
    await drop_environment(env)


@pytest.fixture(scope="module")
async def api(replayed: Environment) -> AsyncIterator[TestClient]:
    async with workers(replayed.settings), http_client(replayed.settings) as client:
        yield client


@asynccontextmanager
async def api_pool(env: Environment) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(env.settings.database_url, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


class Book:
    def __init__(self, api: TestClient, business: dict[str, Any]) -> None:
        self.api = api
        self.headers = {"Authorization": f"Bearer {business['api_key']}"}

    async def post(self, path: str, body: object = None) -> Any:
        answer = await self.api.post(path, json=body, headers=self.headers)
        assert answer.status in (200, 201), await answer.text()
        return await answer.json()


async def history(api: TestClient, replayed: Environment) -> tuple[Book, list[int]]:
    """A business with events of every type: an import (archived clients among them),
    categories, updates, archives and unarchives, back-dated postings, deposits used,
    reversals of both, erasures followed by postings, and a deleted client."""
    business = await provision_business(replayed.settings, "Replayed")
    book = Book(api, business)
    rows: list[list[object]] = [[*HEADER, "Deposit Amount", "Category", "Archived"]]
    for n in range(IMPORTED):
        unpaid = f"{(n * 37) % 5000}.{n % 100:02d}" if n % 3 else f"-{n}.05"
        archived = "yes" if n % 10 == 0 else "no"
        category = ("Wholesale", "Retail", "")[n % 3]
        rows.append(
            [f"Client {n}", "024", f"c{n}@example.com", "Accra", unpaid, n % 7,
             category, archived]
        )  # fmt: skip
    imported = await api.post(
        "/api/v3/clients/import", data=form(openpyxl_file(rows)), headers=book.headers
    )
    assert imported.status == 201, await imported.text()
    vip = (await book.post("/api/v3/clients/category", {"name": "VIP"}))["id"]
    await _monitors(api, book, vip)
    clients = []
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    for n in range(40):
        client = await book.post(
            "/api/v3/clients", {"business_name": f"Direct {n}", "category_id": vip}
        )
        path = f"/api/v3/clients/{client['id']}"
        clients.append(client["id"])
        debit = await book.post(
            f"{path}/transactions", {"type": "debit", "amount": n + 0.5}
        )
        await book.post(
            f"{path}/transactions",
            {"type": "credit", "amount": "0.25", "date": yesterday},
        )
        await book.post(f"{path}/deposits", {"type": "debit", "amount": 20})
        used = await book.post(f"{path}/deposits", {"type": "credit", "amount": 5})
        if n % 6 == 0:
            await book.post(
                f"{path}/transactions/{debit['id']}/reverse", {"reason": "typo"}
            )
        if n % 8 == 0:
            await book.post(f"{path}/deposits/{used['id']}/reverse", {})
        if n % 4 == 0:
            await book.post(path, {"business_email": f"d{n}@example.com"})
        if n % 5 == 0:
            await book.post(f"{path}/archive", {"archived": True})
        if n % 10 == 0:
            await book.post(f"{path}/archive", {"archived": False})
        if n % 7 == 3:  # erased, then posted to (the account goes on, nameless)
            await book.post(f"{path}/erase", {})
            after = {"type": "debit", "amount": 1, "description": "After erasure"}
            await book.post(f"{path}/transactions", after)
    settled = await book.post("/api/v3/clients", {"business_name": "Settled"})
    gone = await api.delete(f"/api/v3/clients/{settled['id']}", headers=book.headers)
    assert gone.status == 200
    listed = await api.get("/api/v3/clients", headers=book.headers)
    every = [client["id"] for client in await listed.json()]
    return book, sorted({*every[:: max(1, len(every) // 30)], *clients[:10]})


async def _monitors(api: TestClient, book: Book, category_id: int) -> None:
    """Monitors live in the balances projection too (rm_monitors): one kept, one
    deleted."""
    line = {"figure": "balance", "condition": ">=", "amount": "12.50"}
    kept = {"scope": "category", "category_id": category_id, **line}
    await book.post("/api/v3/monitors", kept)
    gone = await book.post("/api/v3/monitors", {"scope": "business", **line})
    deleted = await api.delete(f"/api/v3/monitors/{gone['id']}", headers=book.headers)
    assert deleted.status == 200


@pytest.fixture(scope="module")
async def history_book(
    api: TestClient, replayed: Environment
) -> tuple[Book, list[int]]:
    """One history for the module (building it is most of the time)."""
    return await history(api, replayed)


def _yesterday() -> dt.date:
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


async def answers(book: Book, clients: list[int]) -> dict[str, bytes]:
    """Every query route's body (statuses must be 200)."""
    paths = [
        "/api/v3/clients",
        "/api/v3/clients?archived=true",
        "/api/v3/clients?page=2&per_page=50",
        # Search reads the generated columns and the trigram index the rebuild
        # makes again: names (erased clients among Direct 3x), e-mails, phones.
        "/api/v3/clients?search=DIRECT%203",
        "/api/v3/clients?search=d4%40example&page=1&per_page=3",
        "/api/v3/clients?search=client%2012&archived=false",
        "/api/v3/clients?search=%2B233%2024&page=3&per_page=7",
        "/api/v3/clients/summary",
        "/api/v3/clients/categories",
        # Aged receivables read the statements' lines, reversals included, through
        # the index the rebuild makes again.
        "/api/v3/clients/aging",
        "/api/v3/clients/aging?terms_days=30",
        f"/api/v3/clients/aging?as_of={_yesterday()}",
        "/api/v3/monitors",
    ]
    for client_id in clients:
        paths += [
            f"/api/v3/clients/{client_id}",
            f"/api/v3/clients/{client_id}/transactions",
            f"/api/v3/clients/{client_id}/deposits",
        ]
    bodies = {}
    for path in paths:
        answer = await book.api.get(path, headers=book.headers)
        assert answer.status == 200, path
        bodies[path] = await answer.read()
    return bodies


async def test_a_replay_answers_byte_for_byte_and_the_api_never_sees_half_a_model(
    history_book: tuple[Book, list[int]], replayed: Environment
) -> None:
    book, clients = history_book
    events = await _events(replayed)
    assert events > 2_500
    before = await answers(book, clients)
    summary = "/api/v3/clients/summary"
    listing = "/api/v3/clients"

    seen: list[tuple[bytes, bytes]] = []
    done = asyncio.Event()

    async def read_meanwhile() -> None:
        while not done.is_set():
            first = await book.api.get(summary, headers=book.headers)
            second = await book.api.get(listing, headers=book.headers)
            seen.append((await first.read(), await second.read()))

    reader = asyncio.ensure_future(read_meanwhile())
    conn = await asyncpg.connect(replayed.admin_url)
    try:
        outcome = await replay(conn, [])
    finally:
        done.set()
        await reader
        await conn.close()
    assert outcome.projections == ["balances", "statements"]
    # Nothing wrote meanwhile: the replay applied exactly the events counted before.
    assert outcome.events == events
    assert len(seen) >= 2
    assert set(seen) == {(before[summary], before[listing])}
    assert await answers(book, clients) == before
    async with api_pool(replayed) as pool, pool.acquire() as conn:
        report = await verify(conn, settings_keyring(replayed.settings))
    assert (report.ok, report.differences) == (True, [])

    # The projectors go on against the rebuilt tables.
    client_id = clients[-1]
    posted = await book.post(
        f"/api/v3/clients/{client_id}/transactions", {"type": "debit", "amount": 1}
    )
    shown = await book.api.get(f"/api/v3/clients/{client_id}", headers=book.headers)
    assert (await shown.json())["unformated_balance"] == posted["balance_after"]


async def test_a_replay_of_one_business_leaves_the_others_alone(
    api: TestClient, history_book: tuple[Book, list[int]], replayed: Environment
) -> None:
    book, clients = history_book
    other = Book(api, await provision_business(replayed.settings, "Other"))
    await other.post("/api/v3/clients", {"business_name": "Elsewhere"})
    before = await answers(book, clients)
    other_before = await answers(other, [])
    env = {
        **os.environ,
        "LEDGER_ADMIN_DATABASE_URL": replayed.admin_url,
        "LEDGER_DATABASE_URL": replayed.settings.database_url,
        "LEDGER_HMAC_KEY": replayed.settings.hmac_key,
    }
    business_id = await _business_of(replayed, book)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli.main", "replay", "--json",
         "--business", str(business_id)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = msgspec.json.decode(done.stdout)
    assert summary["projections"] == ["balances", "statements"]
    assert summary["business_id"] == business_id
    # The relay may append a ledger.checkpoint meanwhile: count up to the position
    # the replay reached (the business is otherwise quiet).
    assert summary["events"] == await _events(
        replayed, business_id, up_to=summary["position"]
    )
    assert await answers(book, clients) == before
    assert await answers(other, []) == other_before


async def _events(
    env: Environment, business_id: int | None = None, up_to: int = 2**62
) -> int:
    conn = await asyncpg.connect(env.admin_url)
    try:
        if business_id is None:
            return int(await conn.fetchval("SELECT count(*) FROM events"))
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM events WHERE business_id = $1 AND position <= $2",
                business_id,
                up_to,
            )
        )
    finally:
        await conn.close()


async def _business_of(env: Environment, book: Book) -> int:
    answer = await book.api.get("/api/v3/clients/summary", headers=book.headers)
    assert answer.status == 200
    conn = await asyncpg.connect(env.admin_url)
    try:
        key = book.headers["Authorization"].split()[1]
        business_id: int = await conn.fetchval(
            "SELECT business_id FROM api_keys WHERE key_hash = $1",
            hashlib.sha256(key.encode()).hexdigest(),
        )
    finally:
        await conn.close()
    return business_id
