"""The relay's leader lock as PostgreSQL's pg_locks shows it, for the takeover test:
who holds it, who waits for it, and the check that never two hold it at once."""

from __future__ import annotations

import asyncpg

from services.outbox_relay.relay import LEADER_LOCK
from tests.e2e.worker_processes import THIS_DATABASE


async def lock_holders(admin: asyncpg.Connection) -> list[tuple[int, bool]]:
    """(backend pid, granted) of every session holding or awaiting the relay lock."""
    rows = await admin.fetch(
        "SELECT pid, granted FROM pg_locks WHERE locktype = 'advisory'"
        " AND objsubid = 1 AND (classid::int8 << 32) + objid::int8 = $1"
        + THIS_DATABASE,
        LEADER_LOCK,
    )
    return sorted((int(row["pid"]), bool(row["granted"])) for row in rows)


async def holders_are(admin: asyncpg.Connection, count: int, waiting: int) -> bool:
    """Whether `count` sessions hold the relay lock and `waiting` wait for it; never
    more than one holds it."""
    holders = await lock_holders(admin)
    assert sum(granted for _, granted in holders) <= 1
    return [granted for _, granted in holders].count(True) == count and [
        granted for _, granted in holders
    ].count(False) == waiting


async def all_published(admin: asyncpg.Connection, received: list[str]) -> bool:
    """Whether every stored event reached the queue (never two lock holders)."""
    holders = await lock_holders(admin)
    assert sum(granted for _, granted in holders) <= 1
    ids = await admin.fetch("SELECT event_id FROM events")
    return {str(row["event_id"]) for row in ids} <= set(received)
