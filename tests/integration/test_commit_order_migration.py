"""Migration 0011 turns each follower's (transaction id, position) cursor into a
position without skipping an unread event: an upgrade may publish some events again
(at-least-once), never lose one."""

from __future__ import annotations

import uuid

import asyncpg

from services.bootstrap import create_database, migrate
from shared.store.postgres import shared_migrations, with_database

COMMIT_ORDER_MIGRATION = "0011_commit_order.sql"


async def _insert_event(conn: asyncpg.Connection, stream_id: str) -> tuple[str, int]:
    """A bare row inside the caller's transaction: its (transaction id, position)."""
    row = await conn.fetchrow(
        "INSERT INTO events (event_id, business_id, stream_id, version, type,"
        " schema_version, payload, metadata, recorded_at, hash)"
        " VALUES ($1, 1, $2, 1, 'client.created', 1, '{}', '{}', now(), 'h')"
        " RETURNING transaction_id::text AS txid, position",
        uuid.uuid4(),
        stream_id,
    )
    return row["txid"], row["position"]


async def _two_events_out_of_order(url: str) -> tuple[tuple[str, int], ...]:
    """Transaction A takes its id first, B inserts first (position 1), A inserts
    second (position 2): the old order is A (txid lower, position 2), then B."""
    conn_a, conn_b = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        async with conn_a.transaction():
            await conn_a.fetchval("SELECT pg_current_xact_id()")
            async with conn_b.transaction():
                b = await _insert_event(conn_b, "client-b")
            a = await _insert_event(conn_a, "client-a")
    finally:
        await conn_a.close()
        await conn_b.close()
    return a, b


async def test_old_cursors_become_positions_below_the_first_unread_event(
    servers: tuple[str, str],
) -> None:
    """Proves the conversion, with two events whose old order (A, B) is not their
    position order (B = 1, A = 2): the relay had read A only, so its cursor becomes
    0 (B is read, A again); the checkpointer had read both, so its cursor becomes 2;
    a follower with nothing read stays at 0. The old column is gone, and an insert
    after the migration takes the commit-order lock."""
    url = with_database(servers[0], f"ledger_test_order_{uuid.uuid4().hex[:12]}")
    await create_database(url)
    migrations = shared_migrations()
    try:
        await migrate(url, [m for m in migrations if m[0] < COMMIT_ORDER_MIGRATION])
        a, b = await _two_events_out_of_order(url)
        assert (a[1], b[1]) == (2, 1) and int(a[0]) < int(b[0])
        conn = await asyncpg.connect(url)
        try:
            await conn.executemany(
                "INSERT INTO relay_cursor (relay, transaction_id, position)"
                " VALUES ($1, $2::text::xid8, $3)",
                [("main", *a), ("checkpoints", *b), ("idle", "0", 0)],
            )
            await migrate(url, migrations)
            cursors = dict(await conn.fetch("SELECT relay, position FROM relay_cursor"))
            columns = await conn.fetchval(
                "SELECT count(*) FROM information_schema.columns"
                " WHERE table_name = 'relay_cursor' AND column_name = 'transaction_id'"
            )
            async with conn.transaction():
                await _insert_event(conn, "client-c")
                locks = await conn.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()"
                    " AND locktype = 'advisory' AND objid = 7170005 AND granted"
                )
        finally:
            await conn.close()
        assert cursors == {"main": 0, "checkpoints": 2, "idle": 0}
        assert columns == 0
        assert locks == 1
    finally:
        admin = await asyncpg.connect(with_database(servers[0], "postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[-1]}"')
        finally:
            await admin.close()
