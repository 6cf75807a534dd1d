"""Rebuild read models from the event store beside the live ones, then swap.

1. An empty schema `ledger_rebuild` gets each projection's tables (its own schema
   files) and its own `projection_tracking` / `projection_checkpoint`.
2. Every event is read in commit-safe order (event_store.read_after, 10,000 at a time)
   and applied by the projection's own `apply`, with the connection's search_path on
   `ledger_rebuild`: the same code as the live projector, writing the new tables
   (services/replay/load.py: reading runs a batch ahead, secondary indexes are built
   after the load). The API meanwhile answers from the live tables, untouched.
3. The swap, in one transaction: lock the live tracking table (the projectors wait)
   and the live read-model tables, apply the events committed since, move the live
   tables out and the rebuilt ones in (ALTER TABLE ... SET SCHEMA; queries resolve
   table names again), and replace the tracking rows. Readers are blocked only for
   this step; they never see a half-built model. The projectors then go on against
   the new tables, skipping what the rebuild already applied (by stream version).

With `--business`, only that business's events are read, and the swap replaces that
business's rows (DELETE + INSERT in the same transaction) instead of whole tables.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import asyncpg
import msgspec

from projections.registry import PROJECTIONS
from projections.runner import Projection, apply_in_transaction
from projections.schemas import projection_schema
from services.replay.load import READ_BATCH, drop_secondary_indexes, load
from shared.store.event_store import Cursor, read_after

REBUILD = "ledger_rebuild"
RETIRED = "ledger_retired"
REPLAY_LOCK = 7_170_004
LOCK_TIMEOUT = "200ms"
SWAP_ATTEMPTS = 100


class ReplayError(RuntimeError):
    """The replay could not run (another one is running, a lock timed out)."""


class Figures(msgspec.Struct, kw_only=True):
    """What a replay did, as both its outcome and the CLI's summary begin."""

    projections: list[str]
    business_id: int | None
    events: int
    seconds: float
    events_per_s: float
    position: int  # the last event position the rebuilt models hold


class Outcome(Figures, kw_only=True):
    tables: list[str]


async def count_events(conn: asyncpg.Connection, business_id: int | None) -> int:
    if business_id is None:
        return int(await conn.fetchval("SELECT count(*) FROM events"))
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM events WHERE business_id = $1", business_id
        )
    )


async def replay(
    conn: asyncpg.Connection,
    names: Sequence[str],
    business_id: int | None = None,
    progress: Callable[[int], None] = lambda done: None,
) -> Outcome:
    """Rebuild the named projections (all when empty) on `conn`, a superuser
    connection; `progress` is called with the events applied by each batch."""
    projections = [PROJECTIONS[name] for name in names or PROJECTIONS]
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", REPLAY_LOCK):
        raise ReplayError("another replay is running")
    started = time.monotonic()
    try:
        # Tables grow from empty: plan each statement for their current size.
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        tables = await _prepare(conn, projections)
        indexes = await drop_secondary_indexes(conn, REBUILD)
        cursor, events = await load(conn, projections, business_id, progress)
        for definition in indexes:
            await conn.execute(definition)
        for attempt in range(SWAP_ATTEMPTS):
            try:
                cursor, applied = await _catch_up_and_swap(
                    conn, projections, tables, cursor, business_id
                )
            except asyncpg.LockNotAvailableError:
                # A reader or a projector held a table: give way (never deadlock
                # with them), apply what committed meanwhile, and try again.
                cursor, applied = await _apply_next(
                    conn, projections, cursor, business_id
                )
                events += applied
                progress(applied)
                await asyncio.sleep(0.05 * (attempt + 1))
                continue
            events += applied
            progress(applied)
            break
        else:
            raise ReplayError("could not lock the read models for the swap; try again")
    finally:
        await conn.execute("RESET search_path")
        await conn.execute(f"DROP SCHEMA IF EXISTS {REBUILD} CASCADE")
        await conn.execute("SELECT pg_advisory_unlock($1)", REPLAY_LOCK)
    seconds = time.monotonic() - started
    return Outcome(
        projections=[projection.name for projection in projections],
        business_id=business_id,
        events=events,
        seconds=round(seconds, 3),
        events_per_s=round(events / seconds, 1) if seconds else 0.0,
        position=cursor.position,
        tables=tables,
    )


async def _prepare(
    conn: asyncpg.Connection, projections: Sequence[Projection]
) -> list[str]:
    """An empty rebuild schema with the projections' tables; returns their names."""
    await conn.execute(f"DROP SCHEMA IF EXISTS {REBUILD} CASCADE")
    await conn.execute(f"CREATE SCHEMA {REBUILD}")
    await conn.execute(f"SET search_path = {REBUILD}")
    for projection in projections:
        for _, sql in projection_schema(projection.name):
            await conn.execute(sql)
    tables: list[str] = [
        row["tablename"]
        for row in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
            REBUILD,
        )
    ]
    for table in ("projection_tracking", "projection_checkpoint"):
        await conn.execute(
            f"CREATE TABLE {REBUILD}.{table} (LIKE public.{table} INCLUDING ALL)"
        )
    # Rebuilt tables resolve first; the events (and everything else) in public.
    await conn.execute(f"SET search_path = {REBUILD}, public")
    return tables


async def _apply_next(
    conn: asyncpg.Connection,
    projections: Sequence[Projection],
    cursor: Cursor,
    business_id: int | None,
) -> tuple[Cursor, int]:
    batch = await read_after(conn, cursor, limit=READ_BATCH, business_id=business_id)
    if not batch:
        return cursor, 0
    events = [event for _, event in batch]
    async with conn.transaction():
        for projection in projections:
            await apply_in_transaction(conn, projection, events, listed=False)
    return batch[-1][0], len(batch)


async def _catch_up_and_swap(
    conn: asyncpg.Connection,
    projections: Sequence[Projection],
    tables: Sequence[str],
    cursor: Cursor,
    business_id: int | None,
) -> tuple[Cursor, int]:
    """Under the locks: apply what committed since the last batch, then swap. All in
    one transaction: on a lock time-out nothing of it happened."""
    events = 0
    async with conn.transaction():
        await _lock(conn, tables)
        while True:
            cursor, applied = await _apply_next(conn, projections, cursor, business_id)
            if not applied:
                break
            events += applied
        await _swap(conn, projections, tables, business_id)
    return cursor, events


async def _lock(conn: asyncpg.Connection, tables: Sequence[str]) -> None:
    """The projectors first (they lock tracking rows before touching a read model),
    then the read models. Each wait is short (LOCK_TIMEOUT, below PostgreSQL's
    deadlock_timeout of 1 s): a reader holding one table while it waits for another
    that we hold makes us give way, never a deadlock that fails the reader."""
    await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    await conn.execute("LOCK TABLE public.projection_tracking IN EXCLUSIVE MODE")
    for table in tables:
        await conn.execute(f"LOCK TABLE public.{table} IN ACCESS EXCLUSIVE MODE")


async def _swap(
    conn: asyncpg.Connection,
    projections: Sequence[Projection],
    tables: Sequence[str],
    business_id: int | None,
) -> None:
    names = [projection.name for projection in projections]
    if business_id is None:
        await conn.execute(f"DROP SCHEMA IF EXISTS {RETIRED} CASCADE")
        await conn.execute(f"CREATE SCHEMA {RETIRED}")
        for table in tables:
            await conn.execute(f"ALTER TABLE public.{table} SET SCHEMA {RETIRED}")
            await conn.execute(f"ALTER TABLE {REBUILD}.{table} SET SCHEMA public")
        await conn.execute(f"DROP SCHEMA {RETIRED} CASCADE")
        await conn.execute(
            "DELETE FROM public.projection_tracking WHERE projection = ANY($1)", names
        )
        await conn.execute(
            "INSERT INTO public.projection_checkpoint"
            f" SELECT * FROM {REBUILD}.projection_checkpoint"
            " ON CONFLICT (projection) DO UPDATE SET updated_at = now(),"
            " position_last = greatest(projection_checkpoint.position_last,"
            " excluded.position_last)"
        )
    else:
        for table in tables:
            # Generated columns (rm_clients' search columns) are computed by the
            # INSERT itself; naming them in it is an error.
            columns = ", ".join(
                row["attname"]
                for row in await conn.fetch(
                    "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass"
                    " AND attnum > 0 AND NOT attisdropped AND attgenerated = ''"
                    " ORDER BY attnum",
                    f"{REBUILD}.{table}",
                )
            )
            await conn.execute(
                f"DELETE FROM public.{table} WHERE business_id = $1", business_id
            )
            await conn.execute(
                f"INSERT INTO public.{table} ({columns})"
                f" SELECT {columns} FROM {REBUILD}.{table}"
            )
        await conn.execute(
            "DELETE FROM public.projection_tracking WHERE projection = ANY($1)"
            " AND stream_id IN"
            " (SELECT DISTINCT stream_id FROM events WHERE business_id = $2)",
            names,
            business_id,
        )
    await conn.execute(
        "INSERT INTO public.projection_tracking"
        f" SELECT * FROM {REBUILD}.projection_tracking"
    )
