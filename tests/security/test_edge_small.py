"""The small findings of the review, through the real HTTP app (in-process, on a
socket) on the real PostgreSQL: text amounts, export caching, bids at rest."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import uuid
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.bootstrap import create_database, migrate
from services.query_api.queries import business_for_bid
from shared.store.api_keys import new_bid
from shared.store.postgres import (
    shared_migrations,
    with_database,
)
from tests.support.environment import Environment, service_environment

INVALID = "The given data was invalid."
BID_HASH_MIGRATION = "0010_bid_hash.sql"


@pytest.mark.parametrize("amount", ["1_000", "١٢٣", "+5", "1e2"])
async def test_text_amounts_other_than_plain_digits_are_refused_with_422(
    service: TestClient, business: dict[str, Any], pool: asyncpg.Pool, amount: str
) -> None:
    """Proves a posting's text amount must be ASCII digits, one point and thousands
    commas: `amount` as given is answered 422 for the amount and appends nothing."""
    headers = business["headers"]
    created = await service.post(
        "/api/v3/clients", json={"business_name": "Amounts"}, headers=headers
    )
    assert created.status == 201
    client_id = (await created.json())["id"]
    posted = await service.post(
        f"/api/v3/clients/{client_id}/transactions",
        json={"type": "debit", "amount": amount},
        headers=headers,
    )
    assert posted.status == 422
    assert await posted.json() == {
        "message": INVALID,
        "errors": {"amount": ["The amount must be a number."]},
    }
    events = await pool.fetchval(
        "SELECT count(*) FROM events WHERE business_id = $1", business["business_id"]
    )
    assert events == 2  # the default category and the client, no posting


async def test_export_answers_may_not_be_stored_by_any_cache(
    service: TestClient, business: dict[str, Any]
) -> None:
    """Proves the export, every client's personal data, is marked `no-store`."""
    response = await service.get(f"/api/v3/clients/clients-print/{business['bid']}")
    await response.read()
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"


async def test_bids_are_stored_only_as_their_sha256(
    service: TestClient, business: dict[str, Any], pool: asyncpg.Pool
) -> None:
    """Proves a bid is not kept at rest: the business's row holds the bid's SHA-256
    and no column holds the bid, yet the export by the bid answers 200."""
    bid = str(business["bid"])
    row = await pool.fetchrow(
        "SELECT * FROM businesses WHERE business_id = $1", business["business_id"]
    )
    assert row["bid_hash"] == hashlib.sha256(bid.encode()).hexdigest()
    assert bid not in [str(value) for value in row.values()]
    assert "bid" not in row.keys()
    response = await service.get(f"/api/v3/clients/clients-print/{bid}")
    await response.read()
    assert response.status == 200


async def test_a_rotated_bid_is_shown_once_and_only_its_hash_is_kept(
    service: TestClient,
    business: dict[str, Any],
    environment: Environment,
    pool: asyncpg.Pool,
) -> None:
    """Proves `ledger business rotate-bid` stores the new bid hashed: the bid it
    prints exports (200), the old one no longer does (404), and the row holds the
    new bid's SHA-256."""
    env = service_environment(environment, port=8080)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli.main", "business", "rotate-bid"]
        + [str(business["business_id"])],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"business_id: {business['business_id']}"
    bid = lines[1].removeprefix("bid: ")
    stored = await pool.fetchval(
        "SELECT bid_hash FROM businesses WHERE business_id = $1",
        business["business_id"],
    )
    assert stored == hashlib.sha256(bid.encode()).hexdigest()
    for capability, status in ((bid, 200), (str(business["bid"]), 404)):
        response = await service.get(f"/api/v3/clients/clients-print/{capability}")
        await response.read()
        assert response.status == status


async def test_a_bid_made_before_the_migration_still_finds_its_business(
    servers: tuple[str, str],
) -> None:
    """Proves the migration hashes existing bids: a business inserted with a plain
    bid before 0009 is found by that bid after it, and the plain bid is gone."""
    url = with_database(servers[0], f"ledger_test_bids_{uuid.uuid4().hex[:12]}")
    await create_database(url)
    migrations = shared_migrations()
    before = [m for m in migrations if m[0] < BID_HASH_MIGRATION]
    bid = new_bid()
    try:
        await migrate(url, before)
        conn = await asyncpg.connect(url)
        try:
            business_id = await conn.fetchval(
                "INSERT INTO businesses (owner_id, name, bid)"
                " VALUES (7, 'Before', $1) RETURNING business_id",
                bid,
            )
            await migrate(url, migrations)
            plain = await conn.fetchval(
                "SELECT count(*) FROM information_schema.columns"
                " WHERE table_name = 'businesses' AND column_name = 'bid'"
            )
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
        try:
            assert await business_for_bid(pool, bid) == business_id
            assert await business_for_bid(pool, new_bid()) is None
        finally:
            await pool.close()
        assert plain == 0
    finally:
        await _drop(servers[0], url)


async def _drop(server_url: str, url: str) -> None:
    conn = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[-1]}"')
    finally:
        await conn.close()
