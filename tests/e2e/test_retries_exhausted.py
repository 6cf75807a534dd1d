"""Version-conflict retries run out: the appender decides a command again after each
ConcurrencyConflict, 8 times in all (RETRIES_MAX), then answers 409 and writes nothing.

The conflicts are real unique violations of the events table's UNIQUE (stream_id,
version): a trigger the test installs on the session's database, for one client's
stream only, first inserts another writer's row at the very version the appender is
about to write, every time it tries. The trigger's row is rolled back with the
appender's transaction, so the stream's head never moves and every retry collides
again; a sequence (not rolled back) counts the attempts.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from services.command_api.appender import RETRIES_MAX
from shared import events as e
from tests.e2e.ledger_api import Api

CONFLICT_BODY = {"message": "The resource was changed by another request; retry"}


class Collider:
    """The trigger that makes every append to one stream collide, and its counter."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.name = f"crash_api_collide_{uuid.uuid4().hex[:12]}"

    async def install(self, stream_id: str) -> None:
        assert stream_id.replace("-", "").isalnum()  # it is spliced into SQL
        await self.pool.execute(f"""
            CREATE SEQUENCE {self.name};
            CREATE FUNCTION {self.name}() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER AS $$
            BEGIN
                IF pg_trigger_depth() > 1 THEN
                    RETURN NEW;  -- the row this trigger inserts itself
                END IF;
                PERFORM nextval('{self.name}');
                INSERT INTO events (event_id, business_id, stream_id, version, type,
                    schema_version, payload, metadata, recorded_at, hash)
                VALUES (gen_random_uuid(), NEW.business_id, NEW.stream_id,
                    NEW.version, NEW.type, NEW.schema_version, NEW.payload,
                    NEW.metadata, NEW.recorded_at, NEW.hash);
                RETURN NEW;
            END $$;
            CREATE TRIGGER {self.name} BEFORE INSERT ON events FOR EACH ROW
            WHEN (NEW.stream_id = '{stream_id}') EXECUTE FUNCTION {self.name}();
            """)

    async def attempts(self) -> int:
        row = await self.pool.fetchrow(f"SELECT last_value, is_called FROM {self.name}")
        return int(row["last_value"]) if row["is_called"] else 0

    async def remove(self) -> None:
        await self.pool.execute(f"""
            DROP TRIGGER IF EXISTS {self.name} ON events;
            DROP FUNCTION IF EXISTS {self.name}();
            DROP SEQUENCE IF EXISTS {self.name};
            """)


@pytest.fixture
async def collider(admin_pool: asyncpg.Pool) -> AsyncIterator[Collider]:
    collider = Collider(admin_pool)
    yield collider
    await collider.remove()


async def _stream(pool: asyncpg.Pool, stream_id: str) -> list[tuple[int, str]]:
    rows = await pool.fetch(
        "SELECT version, type FROM events WHERE stream_id = $1 ORDER BY version",
        stream_id,
    )
    return [(row["version"], row["type"]) for row in rows]


async def _stored_keys(pool: asyncpg.Pool, business_id: int, key: str) -> int:
    count = await pool.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE business_id = $1 AND key = $2",
        business_id,
        key,
    )
    return int(count)


async def test_deposit_conflicting_on_every_retry_answers_409_and_writes_nothing(
    api: Api,
    business: dict[str, Any],
    admin_pool: asyncpg.Pool,
    collider: Collider,
) -> None:
    """A keyed deposit whose every append meets a unique violation on (stream_id,
    version) is decided exactly RETRIES_MAX (8) times, answers 409 with the exact
    body, and leaves the stream and the idempotency keys untouched; once the
    colliding writer is gone, the same keyed request is written once."""
    client_id = (await api.create_client())["id"]
    stream_id = e.client_stream(client_id)
    before = await _stream(admin_pool, stream_id)
    assert before == [(1, "client.created")]
    await collider.install(stream_id)
    path, key = f"/api/v3/clients/{client_id}/deposits", str(uuid.uuid4())
    body = {"type": "debit", "amount": "40.00"}
    refused = await api.post(path, body, headers={"Idempotency-Key": key})
    assert (refused.status, refused.body) == (409, CONFLICT_BODY)
    assert (RETRIES_MAX, await collider.attempts()) == (8, 8)
    assert await _stream(admin_pool, stream_id) == before
    assert await _stored_keys(admin_pool, business["business_id"], key) == 0
    await collider.remove()
    written = await api.post(path, body, headers={"Idempotency-Key": key})
    assert (written.status, written.body["deposit_after"]) == (201, Decimal("40"))
    assert await _stream(admin_pool, stream_id) == [*before, (2, "deposit.posted")]
