"""The monitor process: follows the event store in commit order and records each
crossing of a balance monitor's line as a monitor.triggered event.

It reads only what it needs: monitors' events, and the events of businesses it
follows (those that have had a monitor); other businesses cost one filtered read per
batch. It looks every LEDGER_MONITOR_POLL_MS (at once again while it is behind):
waking at every commit's NOTIFY cost more CPU under load than the crossings, for a
nudge that need not come within the same 200 ms.

A business's first monitor is a point in the order: the business's figures up to it
are folded from the store (quietly: a monitor never fires at its creation), and the
batch ends there, so the next read takes that business's events too.

Each batch is one transaction: the crossings (monitor_triggers, then the events on
each monitor's stream), the changed figures and monitors (watch_tables.py), and the
cursor. A SIGKILL loses the batch whole; the next run decides it again from the
saved state and records the same crossings. A replay (reset(), then the events from
the start) decides every crossing again: each is keyed by (monitor, client,
position) in monitor_triggers, so none is recorded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
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
from shared.store.new_events import NewEvent, StreamHead, chain

log = logging.getLogger("ledger.monitor")
FOLLOWER = "monitors"  # its cursor's name in relay_cursor
MONITOR_LOCK = 7_170_007  # one monitor process at a time (session advisory lock)
WRITERS_LOCK = 7_170_005  # every insert into events takes it (migration 0011)
PRINCIPAL = "ledger:monitor"
BATCH = 2_000
SPAN = 50_000  # positions scanned per read at most
SEED_BATCH = 5_000
# The cursor alone (nothing of a followed business read) is written this often.
CURSOR_SAVE_S = 5.0
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


class MonitorRunning(RuntimeError):
    """reset() while a monitor process holds its lock."""


class Monitor:
    def __init__(
        self, key: bytes, poll_s: float, open_connection: OpenConnection
    ) -> None:
        self._key = key
        self._poll_s = poll_s
        self._open = open_connection

    async def run(self, stop: asyncio.Event) -> None:
        conn = await self._open()
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", MONITOR_LOCK)
            watch = await watch_tables.load(conn)
            cursor = await load_cursor(conn, FOLLOWER)
            saved_at = time.monotonic()
            while not stop.is_set():
                save = time.monotonic() - saved_at >= CURSOR_SAVE_S
                cursor, more, written = await step(conn, self._key, watch, cursor, save)
                if written:
                    saved_at = time.monotonic()
                if not more:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self._poll_s)
        finally:
            await conn.close()


async def step(
    conn: asyncpg.Connection, key: bytes, watch: Watch, cursor: Cursor, save: bool
) -> tuple[Cursor, bool, bool]:
    """Observe the events after the cursor (one batch) and commit what they changed;
    the new cursor, whether more may be waiting (a full batch, or a fold), and
    whether the cursor was written.

    A batch that read nothing of the followed businesses changed nothing: only the
    cursor moves, in memory, and is written when `save` (now and then) — after a
    crash those positions are read again and again change nothing. Under load every
    commit wakes the process, and a write per wake cost more than the rest."""
    last = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
    upper = min(last, cursor.position + SPAN)
    if upper <= cursor.position:
        return cursor, False, False
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
    written = bool(rows) or save
    if written:
        async with conn.transaction():
            await watch_tables.save(conn, watch)
            await save_cursor(conn, FOLLOWER, Cursor(end))
            await _record(conn, key, fired)  # last: it takes the writers' lock
            if fired:
                await pause_points.pause("monitor.before_commit")  # test-only
    return Cursor(end), end < last, written


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
    stream, caused by the event that crossed: all in one statement, at the end of
    the batch's transaction. The writers' lock (migration 0011) is taken before the
    streams' heads are read, so the heads are final: an API's monitor.deleted on the
    same stream commits before it or waits for this COMMIT, and the other writers
    wait only for this last statement."""
    if not fired:
        return
    recorded = await conn.fetch(
        "INSERT INTO monitor_triggers (monitor_id, client_id, position)"
        " SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])"
        " ON CONFLICT DO NOTHING RETURNING monitor_id, client_id, position",
        [crossing.monitor_id for crossing, _ in fired],
        [crossing.client_id for crossing, _ in fired],
        [crossing.position for crossing, _ in fired],
    )
    new = {(row["monitor_id"], row["client_id"], row["position"]) for row in recorded}
    kept = [
        (crossing, cause)
        for crossing, cause in fired
        if (crossing.monitor_id, crossing.client_id, crossing.position) in new
    ]
    if not kept:
        return
    await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITERS_LOCK)
    heads = await _heads(conn, {e.monitor_stream(c.monitor_id) for c, _ in kept})
    appended: list[NewEvent] = []
    now = dt.datetime.now(dt.UTC)
    for crossing, cause in kept:
        stream_id = e.monitor_stream(crossing.monitor_id)
        metadata = e.Metadata(
            correlation_id=str(uuids.uuid4()),
            causation_id=str(cause.event_id),
            principal=PRINCIPAL,
        )
        [event] = chain(
            key,
            cause.business_id,
            stream_id,
            heads[stream_id],
            [crossing],
            now,
            metadata,
        )
        heads[stream_id] = StreamHead(event.version, event.hash)
        appended.append(event)
        log.info(
            "monitor %s: client %d crossed at position %d",
            crossing.monitor_id,
            crossing.client_id,
            crossing.position,
            extra={"event": "monitor.triggered", "monitor_id": crossing.monitor_id},
        )
    await append(conn, appended)


async def _heads(conn: asyncpg.Connection, streams: set[str]) -> dict[str, StreamHead]:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (stream_id) stream_id, version, hash FROM events"
        " WHERE stream_id = ANY($1::text[]) ORDER BY stream_id, version DESC",
        sorted(streams),
    )
    return {row["stream_id"]: StreamHead(row["version"], row["hash"]) for row in rows}


async def reset(conn: asyncpg.Connection) -> None:
    """Forget the monitor process's state (`ledger monitor --replay`): it decides
    every crossing again from the first event (the ones recorded stay recorded, and
    are not recorded twice). Refused while a monitor process runs (MonitorRunning):
    its state is never pulled from under it."""
    async with conn.transaction():
        if not await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock($1)", MONITOR_LOCK
        ):
            raise MonitorRunning("the monitor process is running: stop it first")
        await conn.execute("DELETE FROM monitor_figures")
        await conn.execute("DELETE FROM monitor_watch")
        await save_cursor(conn, FOLLOWER, Cursor())
