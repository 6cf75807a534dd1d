"""Event evolution: an event stored at schema version 1 is read as version 2 by every
reader (the stream load, the projections' replay, `ledger replay`, `ledger audit
verify`, the history route and the feed), through the one decode path with the
upcaster registry.

The test defines version 2 itself. Version 1 of `transaction.posted`, as this test
stores it, held the amount as a decimal string `amount`; version 2 is today's struct,
with integer minor units `amount_minor`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import msgspec
import pytest

from projections.registry import PROJECTIONS
from projections.runner import apply_batch
from services.audit.verify import verify
from services.cli.businesses import provision_business
from services.command_api.appender import Appender
from services.replay.rebuild import replay
from shared import events as e
from shared.bus import broker
from shared.hash_chain import GENESIS, event_hash, hashed_content
from shared.key_settings import settings_keyring
from shared.keyring import key_id_of
from shared.store.event_rows import SELECT_EVENTS, stored_hashed_content
from shared.store.event_store import Cursor, load_stream, read_after
from shared.store.postgres import create_pool
from shared.upcasting import UPCASTERS, Payload
from tests.integration.scenarios import (
    TODAY,
    create_client,
    id_of,
    submit,
    transaction,
)
from tests.support.environment import Environment, create_environment, drop_environment
from tests.support.service import http_client


def amount_as_minor_units(payload: Payload) -> Payload:
    """transaction.posted 1 -> 2: the decimal string `amount` becomes `amount_minor`.

    Rows of the test session written before this test defined version 2 already
    have today's shape; they pass through (with a real change, every version-1 row
    would have the old one)."""
    if "amount" not in payload:
        return payload
    upcast = dict(payload)
    upcast["amount_minor"] = int(Decimal(str(upcast.pop("amount"))) * 100)
    return upcast


@pytest.fixture
async def evolving(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    """An environment of its own: the version-1 row stays out of the shared ones."""
    env = await create_environment(*servers, tag="upcast")
    yield env
    await drop_environment(env)


async def _store_version_1_posting(
    conn: asyncpg.Connection, key: bytes, business_id: int, client_id: int
) -> dict[str, object]:
    """Insert, with SQL, a version-1 debit of "12.50" chained onto the client's
    stream as the code of version 1 would have; returns its stored payload."""
    [created] = await load_stream(conn, e.client_stream(client_id))
    assert isinstance(created.payload, e.ClientCreated)
    payload: dict[str, object] = {
        "type": "transaction.posted",
        "transaction_id": await conn.fetchval("SELECT nextval('entry_id_seq')"),
        "client_id": client_id,
        "account_id": created.payload.account_id,
        "entry_type": "debit",
        "amount": "12.50",
        "date": TODAY.isoformat(),
        "description": "written by version 1",
        "reference": "",
    }
    metadata = {
        "correlation_id": str(uuid.uuid4()),
        "causation_id": None,
        "principal": "version-1",
        "idempotency_key": None,
    }
    event_id, recorded_at = uuid.uuid4(), dt.datetime.now(dt.UTC)
    content = hashed_content(
        event_id=str(event_id),
        event_type="transaction.posted",
        business_id=business_id,
        stream_id=created.stream_id,
        version=2,
        schema_version=1,
        recorded_at=recorded_at.isoformat(),
        metadata=metadata,
        payload=payload,
        key_id=key_id_of(key),
    )
    await conn.execute(
        "INSERT INTO events (event_id, business_id, stream_id, version, type,"
        " schema_version, payload, metadata, recorded_at, hash, key_id)"
        " VALUES ($1, $2, $3, 2, 'transaction.posted', 1, $4::text::jsonb,"
        " $5::text::jsonb, $6, $7, $8)",
        event_id,
        business_id,
        created.stream_id,
        json.dumps(payload),
        json.dumps(metadata),
        recorded_at,
        event_hash(key, created.hash, content),
        key_id_of(key),
    )
    return payload


async def _chain_verifies(conn: asyncpg.Connection, key: bytes, stream_id: str) -> bool:
    """The audit's check: every hash recomputed from the stored rows, in order."""
    rows = await conn.fetch(
        SELECT_EVENTS + "WHERE stream_id = $1 ORDER BY version", stream_id
    )
    previous = GENESIS
    for row in rows:
        if event_hash(key, previous, stored_hashed_content(row)) != row["hash"]:
            return False
        previous = row["hash"]
    return True


async def test_a_version_1_event_is_read_as_version_2_everywhere(
    evolving: Environment,
) -> None:
    """Stores a version-1 transaction.posted with SQL; without an upcaster no reader
    can decode it. With version 2 defined (an upcaster from 1), load_stream gives
    amount_minor 1250 at schema_version 2 with the stored hash; the chain verifies
    from the stored rows (and would not from the upcast content); a new posting is
    written at version 2 and read as it is; a replay through read_after and both
    projections gives the client a debit of 12.50 + 1.00; the history route and the
    feed serve the old event as version 2, as the relay would publish it."""
    settings = evolving.settings
    key = settings.hmac_key.encode()
    business = await provision_business(settings, "Evolving")
    headers = {"Authorization": f"Bearer {business['api_key']}"}
    pool = await create_pool(settings.database_url, max_size=4)
    appender = Appender(pool, key, 500)
    appender.start()
    try:
        client_id = await create_client(appender, id_of(business))
        stream_id = e.client_stream(client_id)
        async with pool.acquire() as conn:
            stored_payload = await _store_version_1_posting(
                conn, key, id_of(business), client_id
            )
            with pytest.raises(msgspec.ValidationError, match="amount_minor"):
                await load_stream(conn, stream_id)

        UPCASTERS.register("transaction.posted", 1, amount_as_minor_units)
        try:
            await _read_everywhere(
                evolving, pool, appender, headers, client_id, stored_payload
            )
        finally:
            UPCASTERS.unregister("transaction.posted", 1)
        assert UPCASTERS.current_version("transaction.posted") == 1
    finally:
        await appender.stop()
        await pool.close()


async def _read_everywhere(
    env: Environment,
    pool: asyncpg.Pool,
    appender: Appender,
    headers: dict[str, str],
    client_id: int,
    stored_payload: dict[str, object],
) -> None:
    key = env.settings.hmac_key.encode()
    stream_id = e.client_stream(client_id)
    [created, old] = await load_stream(pool, stream_id)
    assert isinstance(created.payload, e.ClientCreated)
    assert old.schema_version == 2
    assert old.payload == e.TransactionPosted(
        transaction_id=int(str(stored_payload["transaction_id"])),
        client_id=client_id,
        account_id=created.payload.account_id,
        entry_type="debit",
        amount_minor=1250,
        date=TODAY,
        description="written by version 1",
    )
    stored_hash = await pool.fetchval(
        "SELECT hash FROM events WHERE event_id = $1", old.event_id
    )
    assert old.hash == stored_hash

    async with pool.acquire() as conn:
        assert await _chain_verifies(conn, key, stream_id)
        row = await conn.fetchrow(SELECT_EVENTS + "WHERE event_id = $1", old.event_id)
    as_read = {
        **stored_hashed_content(row),
        "schema_version": 2,
        "payload": msgspec.to_builtins(old.payload),
    }
    assert event_hash(key, created.hash, as_read) != stored_hash

    business_id = old.business_id
    await submit(appender, transaction(business_id, client_id, 100))
    [_, _, new] = await load_stream(pool, stream_id)
    assert new.schema_version == 2
    assert (
        await pool.fetchval(
            "SELECT schema_version FROM events WHERE event_id = $1", new.event_id
        )
        == 2
    )
    async with pool.acquire() as conn:
        assert await _chain_verifies(conn, key, stream_id)

    await _replay_and_serve(env, pool, headers, client_id, [created, old, new])


async def _replay_and_serve(
    env: Environment,
    pool: asyncpg.Pool,
    headers: dict[str, str],
    client_id: int,
    stream: list[e.Envelope],
) -> None:
    async with pool.acquire() as conn:
        replayed = [event for _, event in await read_after(conn, Cursor(), limit=1000)]
    assert [event for event in replayed if event.stream_id == stream[0].stream_id] == (
        stream
    )
    for projection in PROJECTIONS.values():
        assert await apply_batch(pool, projection, replayed) == len(replayed)
    published = [json.loads(broker.envelope_body(event)) for event in stream]
    async with http_client(env.settings) as client:
        answer = await client.get(f"/api/v3/clients/{client_id}", headers=headers)
        assert (await answer.json())["total_debit"] == "13.50"
        history = await client.get(
            f"/api/v3/clients/{client_id}/events", headers=headers
        )
        assert (await history.json())["data"] == published
        statement = await client.get(
            f"/api/v3/clients/{client_id}/transactions", headers=headers
        )
        lines = (await statement.json())["transactions"]
        assert [(line["amount"], line["description"]) for line in lines] == [
            (12.5, "written by version 1"),
            (1, ""),
        ]
        feed = await client.get("/api/v3/events", headers=headers)
        served = (await feed.json())["data"]
    old = published[1]
    assert [event for event in served if event["event_id"] == old["event_id"]] == [old]
    assert old["schema_version"] == 2
    assert old["payload"]["amount_minor"] == 1250
    assert "amount" not in old["payload"]

    # `ledger replay` rebuilds from the old row, and `ledger audit verify` agrees with
    # the read models (figures folded from the upcast event, hashes from the stored).
    admin = await asyncpg.connect(env.admin_url)
    try:
        outcome = await replay(admin, [])
        report = await verify(admin, settings_keyring(env.settings))
    finally:
        await admin.close()
    assert outcome.events == len(replayed)
    assert (report.ok, report.differences) == (True, [])
    async with http_client(env.settings) as client:
        answer = await client.get(f"/api/v3/clients/{client_id}", headers=headers)
        assert (await answer.json())["total_debit"] == "13.50"
