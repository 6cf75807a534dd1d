"""The monitor process: follows the event store in commit order and records each
crossing of a balance monitor's line as a monitor.triggered event.

It reads only what it needs: monitors' events, and the events of businesses it
follows (those that have had a monitor); other businesses cost one filtered read per
batch. A business's first monitor is a point in the order: the business's figures up
to it are folded from the store (quietly: a monitor never fires at its creation),
and the batch ends there, so the next read takes that business's events too.

Each batch is one transaction: the crossings (monitor_triggers, then the events on
each monitor's stream), the changed figures and monitors (watch_tables.py), and the
cursor. A SIGKILL loses the batch whole; the next run decides it again from the
saved state and records the same crossings. A replay (reset(), then the events from
the start) decides every crossing again: each is keyed by (monitor, client,
position) in monitor_triggers, so none is recorded twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from services.monitor import watch_tables
from shared import events as e
from shared import pause_points, uuids
from shared.monitors import Watch
from shared.store.event_rows import SELECT_EVENTS, envelope_from_row
from shared.store.event_store import (
    Cursor,
    append,
    load_cursor,
    read_after,
    save_cursor,
)
from shared.store.new_events import StreamHead, chain

log = logging.getLogger("ledger.monitor")
FOLLOWER = "monitors"  # its cursor's name in relay_cursor
MONITOR_LOCK = 7_170_004  # one monitor process at a time (session advisory lock)
PRINCIPAL = "ledger:monitor"
BATCH = 2_000
SPAN = 50_000  # positions scanned per read at most
SEED_BATCH = 5_000
# After a wake-up, the events of this long are read together: under load every
# commit NOTIFYs, and one read per commit would cost more than the crossings.
GATHER_S = 0.05
OpenConnection = Callable[[], Awaitable[asyncpg.Connection]]

_READ = (
    SELECT_EVENTS
    + """WHERE position > $1 AND position <= $2
  AND (business_id = ANY($3::bigint[])
       OR type IN ('monitor.created', 'monitor.deleted'))
ORDER BY position
LIMIT $4
"""
)


class Monitor:
    """`replay`: forget the state first (reset()) and decide every crossing again
    from the first event (`ledger monitor --replay`)."""

    def __init__(
        self,
        key: bytes,
        poll_s: float,
        open_connection: OpenConnection,
        replay: bool = False,
    ) -> None:
        self._key = key
        self._poll_s = poll_s
        self._open = open_connection
        self._replay = replay
        self._woken = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        conn = await self._open()
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", MONITOR_LOCK)
            if self._replay:
                await reset(conn)  # the lock is this session's: taken again at once
                self._replay = False  # a restart after a failure resumes instead
            await conn.add_listener("ledger_events", self._on_notify)
            watch = await watch_tables.load(conn)
            cursor = await load_cursor(conn, FOLLOWER)
            while not stop.is_set():
                self._woken.clear()
                cursor, busy = await step(conn, self._key, watch, cursor)
                if not busy:
                    await _first(stop, self._woken, self._poll_s)
                    await _first(stop, asyncio.Event(), GATHER_S)
        finally:
            await conn.close()

    def _on_notify(self, *_: object) -> None:
        self._woken.set()


async def _first(stop: asyncio.Event, woken: asyncio.Event, timeout_s: float) -> None:
    waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(woken.wait())}
    await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    for wait in waits:
        wait.cancel()


async def step(
    conn: asyncpg.Connection, key: bytes, watch: Watch, cursor: Cursor
) -> tuple[Cursor, bool]:
    """Observe the next batch and commit it; the new cursor, and whether there was
    anything to read."""
    last = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
    upper = min(last, cursor.position + SPAN)
    if upper <= cursor.position:
        return cursor, False
    rows = await conn.fetch(
        _READ, cursor.position, upper, sorted(watch.followed), BATCH
    )
    end = rows[-1]["position"] if len(rows) == BATCH else upper
    fired: list[tuple[e.MonitorTriggered, e.Envelope]] = []
    for row in rows:
        event = envelope_from_row(row)
        if watch.unfollowed(event):
            await _fold_before(conn, watch, event)
            end = event.position  # the business's next events were not read
        fired += [(crossing, event) for crossing in watch.observe(event)]
        if end == event.position:
            break
    async with conn.transaction():
        await _record(conn, key, fired)
        await watch_tables.save(conn, watch)
        await save_cursor(conn, FOLLOWER, Cursor(end))
        if fired:
            await pause_points.pause("monitor.before_commit")  # test-only
    return Cursor(end), True


async def _fold_before(
    conn: asyncpg.Connection, watch: Watch, event: e.Envelope
) -> None:
    """The figures of the business's clients up to `event` (its first monitor)."""
    cursor = Cursor()
    while batch := await read_after(
        conn, cursor, limit=SEED_BATCH, business_id=event.business_id
    ):
        for _, earlier in batch:
            if earlier.position >= event.position:
                return
            watch.fold(earlier)
        cursor = batch[-1][0]


async def _record(
    conn: asyncpg.Connection,
    key: bytes,
    fired: list[tuple[e.MonitorTriggered, e.Envelope]],
) -> None:
    """Each crossing not recorded yet, as a monitor.triggered event on its monitor's
    stream, caused by the event that crossed."""
    for crossing, cause in fired:
        new = await conn.fetchval(
            "INSERT INTO monitor_triggers (monitor_id, client_id, position)"
            " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true",
            crossing.monitor_id,
            crossing.client_id,
            crossing.position,
        )
        if not new:
            continue
        stream_id = e.monitor_stream(crossing.monitor_id)
        row = await conn.fetchrow(
            "SELECT version, hash FROM events WHERE stream_id = $1"
            " ORDER BY version DESC LIMIT 1",
            stream_id,
        )
        metadata = e.Metadata(
            correlation_id=str(uuids.uuid4()),
            causation_id=str(cause.event_id),
            principal=PRINCIPAL,
        )
        now = dt.datetime.now(dt.UTC)
        head = StreamHead(row["version"], row["hash"])
        await append(
            conn,
            chain(key, cause.business_id, stream_id, head, [crossing], now, metadata),
        )
        log.info(
            "monitor %s: client %d crossed at position %d",
            crossing.monitor_id,
            crossing.client_id,
            crossing.position,
            extra={"event": "monitor.triggered", "monitor_id": crossing.monitor_id},
        )


async def reset(conn: asyncpg.Connection) -> None:
    """Forget the monitor process's state: it decides every crossing again from the
    first event (the ones recorded stay recorded, and are not recorded twice)."""
    async with conn.transaction():
        if not await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock($1)", MONITOR_LOCK
        ):
            raise RuntimeError("the monitor process is running: stop it first")
        await conn.execute("DELETE FROM monitor_figures")
        await conn.execute("DELETE FROM monitor_watch")
        await save_cursor(conn, FOLLOWER, Cursor())
