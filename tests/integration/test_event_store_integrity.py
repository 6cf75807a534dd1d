"""The events table is append-only, and every stored event's keyed hash verifies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest

from services.command_api import renderers
from services.command_api.appender import Appender
from shared import commands as c
from shared import events as e
from shared.hash_chain import GENESIS, event_hash, hashed_content
from shared.keyring import key_id_of
from tests.integration.scenarios import (
    create_client,
    deposit,
    id_of,
    metadata,
    submit,
    transaction,
)
from tests.support.environment import Environment

CHANGES = (
    "UPDATE events SET payload = payload || '{\"amount_minor\": 1}'"
    " WHERE position = $1",
    "DELETE FROM events WHERE position = $1",
)


async def _some_position(
    pool: asyncpg.Pool, appender: Appender, business_id: int
) -> int:
    client_id = await create_client(appender, business_id)
    result = await submit(appender, transaction(business_id, client_id, 4_200))
    assert result.position is not None
    return result.position


async def test_the_events_table_refuses_update_and_delete_even_to_its_owner(
    environment: Environment,
    pool: asyncpg.Pool,
    appenders: Callable[[], Appender],
    business: dict[str, object],
) -> None:
    """As the superuser, UPDATE, DELETE and TRUNCATE on events are refused by the
    append-only trigger, and the row is unchanged afterwards."""
    position = await _some_position(pool, appenders(), id_of(business))
    before = await pool.fetchrow("SELECT * FROM events WHERE position = $1", position)
    conn = await asyncpg.connect(environment.admin_url)
    try:
        for statement, operation in zip(CHANGES, ("UPDATE", "DELETE"), strict=True):
            with pytest.raises(asyncpg.RaiseError) as refused:
                await conn.execute(statement, position)
            assert refused.value.args[0] == (
                f"the events table is append-only ({operation} refused)"
            )
        with pytest.raises(asyncpg.RaiseError, match=r"\(TRUNCATE refused\)"):
            await conn.execute("TRUNCATE events")
    finally:
        await conn.close()
    assert (
        await pool.fetchrow("SELECT * FROM events WHERE position = $1", position)
        == before
    )


async def test_the_service_role_may_only_insert_and_select_events(
    pool: asyncpg.Pool,
    appenders: Callable[[], Appender],
    business: dict[str, object],
) -> None:
    """Connected as ledger_app (the service's role), UPDATE and DELETE on events fail
    for lack of privilege before any trigger runs; the role holds exactly INSERT and
    SELECT on the table."""
    position = await _some_position(pool, appenders(), id_of(business))
    assert await pool.fetchval("SELECT current_user") == "ledger_app"
    for statement in CHANGES:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pool.execute(statement, position)
    privileges = await pool.fetch(
        "SELECT privilege_type FROM information_schema.role_table_grants"
        " WHERE grantee = 'ledger_app' AND table_name = 'events'"
        " ORDER BY privilege_type"
    )
    assert [row["privilege_type"] for row in privileges] == ["INSERT", "SELECT"]


async def _varied_history(appender: Appender, business_id: int) -> tuple[int, int]:
    """A category; two clients at once; four postings and deposits of the first at
    once (one batch); an update, an archive of the first and a deletion of the
    second. The two clients' ids."""
    await appender.submit(
        c.CreateCategory(business_id=business_id, name="Wholesale", description="Bulk"),
        metadata("category-key"),
        renderers.category,
    )
    first, second = await asyncio.gather(
        create_client(appender, business_id, "First"),
        create_client(appender, business_id, "Second"),
    )
    await asyncio.gather(
        submit(appender, transaction(business_id, first, 123_456)),
        submit(appender, transaction(business_id, first, 6, "credit")),
        submit(appender, deposit(business_id, first, 10_000, "debit")),
        submit(appender, deposit(business_id, first, 2_500, "credit")),
    )
    client_render = lambda outcome: (200, b"")  # noqa: E731
    await appender.submit(
        c.UpdateClient(
            business_id=business_id, client_id=first, business_email="a@b.co"
        ),
        metadata(),
        client_render,
    )
    await appender.submit(
        c.SetArchived(business_id=business_id, client_id=first),
        metadata(),
        client_render,
    )
    await appender.submit(
        c.DeleteClient(business_id=business_id, client_id=second),
        metadata(),
        renderers.deleted,
    )
    return first, second


def _content_of(row: asyncpg.Record, key: bytes) -> dict[str, object]:
    """What the HMAC covers, rebuilt from the stored row alone."""
    return hashed_content(
        event_id=str(row["event_id"]),
        event_type=row["type"],
        business_id=row["business_id"],
        stream_id=row["stream_id"],
        version=row["version"],
        schema_version=row["schema_version"],
        recorded_at=row["recorded_at"].isoformat(),
        metadata=row["metadata"],
        payload=row["payload"],
        key_id=key_id_of(key),
        sealed=row["sealed"],
    )


async def test_every_stored_event_hash_verifies_from_the_row_alone(
    environment: Environment,
    pool: asyncpg.Pool,
    appenders: Callable[[], Appender],
    business: dict[str, object],
) -> None:
    """For a business with a category, clients, postings, deposits, an update, an
    archive and a deletion (some in one batch), each event's HMAC recomputed from its
    stored row (payload and metadata as jsonb, recorded_at.isoformat(), the sealed
    personal fields as stored) and the previous hash in its stream equals the stored
    hash; another key matches none."""
    business_id = id_of(business)
    key = environment.settings.hmac_key.encode()
    first, second = await _varied_history(appenders(), business_id)
    rows = await pool.fetch(
        "SELECT * FROM events WHERE business_id = $1 ORDER BY stream_id, version",
        business_id,
    )
    assert len(rows) == 2 + 7 + 2  # two categories; First's 7 events; Second's 2

    previous: dict[str, str] = {}
    for row in rows:
        assert row["version"] == 1 or row["stream_id"] in previous
        content = _content_of(row, key)
        assert row["key_id"] == key_id_of(key)
        chained_to = previous.get(row["stream_id"], GENESIS)
        assert event_hash(key, chained_to, content) == row["hash"], row["event_id"]
        assert event_hash(b"another key", chained_to, content) != row["hash"]
        previous[row["stream_id"]] = row["hash"]
    assert {e.client_stream(first), e.client_stream(second)} <= set(previous)
