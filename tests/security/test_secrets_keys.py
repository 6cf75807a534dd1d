"""Issue 9, secrets: each event records its key's id; the audit verifies with a
keyring, so rotation works and a known key vouches only for what it hashed before key
ids existed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from services.audit.verify import verify
from services.cli.businesses import provision_business
from services.command_api.appender import Appender
from shared.config import Settings
from shared.hash_chain import GENESIS, event_hash
from shared.key_settings import settings_keyring
from shared.keyring import DEVELOPMENT_KEY, Keyring, key_id_of
from shared.store.event_rows import stored_hashed_content
from tests.integration.scenarios import create_client, submit, transaction
from tests.security.key_chains import (
    by_stream,
    chain_differences,
    difference,
    rechain,
    rows_of,
    tamper_metadata,
)
from tests.support.environment import Environment, strong_key
from tests.support.service import http_client
from tests.support.workbooks import HEADER, form, workbook


@pytest.fixture
async def admin(environment: Environment) -> AsyncIterator[asyncpg.Connection]:
    """The admin connection: what an attacker with database access holds."""
    conn = await asyncpg.connect(environment.admin_url)
    yield conn
    await conn.close()


async def post(api: TestClient, path: str, body: dict[str, Any], key: str) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    answer = await api.post(path, json=body, headers=headers)
    assert answer.status in (200, 201), await answer.text()
    return int((await answer.json())["id"])


async def _written_under_a_then_b(
    environment: Environment, key_a: str, key_b: str
) -> tuple[int, int, Settings]:
    """Through the API under key A: client "Before" and a debit; then under key B
    with A among the previous keys: a credit to Before and client "After". The
    business's id, Before's id and the settings under B."""
    under_a = msgspec.structs.replace(environment.settings, hmac_key=key_a)
    business = await provision_business(under_a, f"Rotation {uuid.uuid4().hex[:8]}")
    business_id, api_key = int(business["business_id"]), str(business["api_key"])
    async with http_client(under_a) as api:
        before = await post(
            api, "/api/v3/clients", {"business_name": "Before"}, api_key
        )
        debit = {"type": "debit", "amount": 150}
        await post(api, f"/api/v3/clients/{before}/transactions", debit, api_key)
    under_b = msgspec.structs.replace(
        environment.settings, hmac_key=key_b, hmac_previous_keys=key_a
    )
    async with http_client(under_b) as api:
        credit = {"type": "credit", "amount": "20.25"}
        await post(api, f"/api/v3/clients/{before}/transactions", credit, api_key)
        await post(api, "/api/v3/clients", {"business_name": "After"}, api_key)
    return business_id, before, under_b


async def _assert_a_tampered_old_and_new_event_found(
    pool: asyncpg.Pool,
    admin: asyncpg.Connection,
    ring: Keyring,
    rows: list[asyncpg.Record],
    keys: tuple[str, str],
) -> None:
    """Tamper with Before's debit (hashed under A) and credit (under B): verify names
    each, with the hash its own key gives."""
    key_a, key_b = keys
    business_id, stream = rows[0]["business_id"], rows[0]["stream_id"]
    old, new = rows[1:3]
    await tamper_metadata(admin, old["position"])
    await tamper_metadata(admin, new["position"])
    tampered = {r["version"]: r for r in await rows_of(pool, business_id)
                if r["stream_id"] == stream}  # fmt: skip
    expected_old = event_hash(
        key_a.encode(), tampered[1]["hash"], stored_hashed_content(tampered[2])
    )
    expected_new = event_hash(
        key_b.encode(), tampered[2]["hash"], stored_hashed_content(tampered[3])
    )
    assert await chain_differences(pool, ring, business_id) == [
        difference(old, "hash", expected_old, old["hash"]),
        difference(new, "hash", expected_new, new["hash"]),
    ]


async def test_a_rotation_keeps_every_event_verifiable_and_tampering_found(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    admin: asyncpg.Connection,
) -> None:
    """Events written through the API under key A, then under key B with A among the
    previous keys, carry their key's id; verify is clean with both keys, names every
    A event when A is left out, and finds a tampered old and new event under each."""
    key_a, key_b = strong_key(), strong_key()
    business_id, before, under_b = await _written_under_a_then_b(
        environment, key_a, key_b
    )
    rows = await rows_of(pool, business_id)
    id_a, id_b = key_id_of(key_a.encode()), key_id_of(key_b.encode())
    stream = f"client-{before}"
    in_order = sorted(rows, key=lambda row: row["position"])
    assert [(r["type"], r["key_id"]) for r in in_order] == [
        ("category.created", id_a),  # "Uncategorised", made with the business
        ("client.created", id_a),
        ("transaction.posted", id_a),
        ("transaction.posted", id_b),
        ("client.created", id_b),
    ]
    ring = settings_keyring(under_b)
    async with pool.acquire() as conn:
        clean = await verify(conn, ring, business_id)
    assert (clean.ok, clean.events, clean.differences) == (True, 5, [])
    without_a = Keyring(current=key_b.encode())
    assert await chain_differences(pool, without_a, business_id) == [
        difference(row, "key", "a key in the keyring", id_a)
        for row in rows
        if row["key_id"] == id_a
    ]
    await _assert_a_tampered_old_and_new_event_found(
        pool, admin, ring, [r for r in rows if r["stream_id"] == stream], (key_a, key_b)
    )


async def _streams_before_key_ids(
    pool: asyncpg.Pool, strong: str, business_id: int
) -> list[int]:
    """Five clients through an appender under the strong key, the first four with a
    posting each: their ids."""
    appender = Appender(pool, strong.encode(), 500)
    appender.start()
    try:
        clients = []
        # The streams from before key ids first: one hashed with a strong key, one
        # with the development key.
        for with_posting in (True, True, True, True, False):
            clients.append(await create_client(appender, business_id))
            if with_posting:
                await submit(appender, transaction(business_id, clients[-1], 1_000))
    finally:
        await appender.stop()
    return clients


async def test_a_development_key_store_verifies_only_below_its_bound(
    environment: Environment, pool: asyncpg.Pool, admin: asyncpg.Connection
) -> None:
    """Streams hashed before key ids (key id NULL): one with the current key verifies
    as it is; one with the development key fails with the current key alone and
    verifies once that key is listed with its bound; rows written since, relabelled
    to it (as legacy, or by its id), are all named."""
    strong = strong_key()
    settings = msgspec.structs.replace(environment.settings, hmac_key=strong)
    business = await provision_business(settings, f"Legacy {uuid.uuid4().hex[:8]}")
    business_id = int(business["business_id"])
    clients = await _streams_before_key_ids(pool, strong, business_id)
    upgraded, legacy, relabelled, rewritten, renamed = (f"client-{c}" for c in clients)
    dev = DEVELOPMENT_KEY.encode()
    await rechain(admin, upgraded, {1, 2}, strong.encode(), None)
    await rechain(admin, legacy, {1, 2}, dev, None)
    rows = {(r["stream_id"], r["version"]): r for r in await rows_of(pool, business_id)}
    assert [rows[s, v]["key_id"] for s in (upgraded, legacy) for v in (1, 2)] == [
        None
    ] * 4
    current_only = Keyring(current=strong.encode())
    assert await chain_differences(pool, current_only, business_id) == [
        difference(
            rows[legacy, version],
            "hash",
            event_hash(
                strong.encode(),
                rows[legacy, 1]["hash"] if version == 2 else GENESIS,
                stored_hashed_content(rows[legacy, version]),
            ),
            rows[legacy, version]["hash"],
        )
        for version in (1, 2)
    ]
    bound = rows[legacy, 2]["position"]
    ring = Keyring(current=strong.encode(), previous=(dev,), legacy_position_max=bound)
    assert await chain_differences(pool, ring, business_id) == []

    await rechain(admin, relabelled, {2}, dev, None)
    await rechain(admin, rewritten, {1, 2}, dev, None)
    await rechain(admin, renamed, {1}, dev, key_id_of(dev))
    rows = {(r["stream_id"], r["version"]): r for r in await rows_of(pool, business_id)}
    beyond = f"a key id (legacy rows end at position {bound})"
    expected = [
        difference(rows[relabelled, 2], "key", "a key id (the stream has them)", None),
        difference(rows[rewritten, 1], "key", beyond, None),
        difference(rows[rewritten, 2], "key", beyond, None),
        difference(rows[renamed, 1], "key", "a key fit to sign", key_id_of(dev)),
    ]
    found = await chain_differences(pool, ring, business_id)
    assert sorted(found, key=by_stream) == sorted(expected, key=by_stream)


async def test_an_import_labels_its_events_with_the_current_key(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
) -> None:
    """A workbook imported through the API (events written by COPY) records the
    current key's id on every event, and the business verifies clean."""
    raw = workbook("openpyxl", [HEADER, ["Ama Stores", None, None, None, 12.5]])
    answer = await service.post(
        "/api/v3/clients/import", data=form(raw), headers=business["headers"]
    )
    assert answer.status == 201, await answer.text()
    business_id = int(business["business_id"])
    rows = await rows_of(pool, business_id)
    current = key_id_of(environment.settings.hmac_key.encode())
    assert sorted(r["type"] for r in rows) == [
        "category.created",
        "client.created",
        "clients.imported",
        "transaction.posted",
    ]
    assert {r["key_id"] for r in rows} == {current}
    async with pool.acquire() as conn:
        report = await verify(conn, settings_keyring(environment.settings), business_id)
    assert (report.ok, report.events, report.differences) == (True, 4, [])
