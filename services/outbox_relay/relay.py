"""Hop 4: the relay. Follows the events table (the outbox) and publishes to RabbitMQ.

It follows the store in commit order (event_store.read_after) in two lanes, each with
its own persisted cursor (relay_cursor) and its own connection, so neither waits for
the other (shared/bus/broker.py says what each sends):
- **subscribers** (cursor `main`): one message per event on the topic exchange;
- **frames** (cursor `frames`): one frame per projection partition and batch, on the
  projectors' own exchange (services/outbox_relay/frames.py, which also lets other
  businesses' events overtake a bulk transaction). A 100,000-row import's 300,001
  events cross this lane as 150 frames, while the subscribers' lane publishes its
  300,001 messages at its own pace: the read models no longer wait for those.
Each lane publishes a batch, waits for the broker's confirms, and only then moves its
cursor (saved at most every CURSOR_SAVE_S). A crash before the save republishes what
was published since the last one: at-least-once, and the projectors dedupe by stream
version. Only one relay publishes at a time: each
holds a PostgreSQL advisory lock while it runs, and a standby blocks on it until the
leader's session ends. The leader also takes the chain-head checkpoints
(shared/chain_checkpoints) every `checkpoint_interval_s`, in the subscribers' lane.

The relay opens nothing itself: the CLI gives it openers (services/bootstrap.py names
and sizes what they open), and each run opens its connections afresh, so a restart by
shared/worker/loop.py after a failure reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial

import asyncpg
import msgspec
from aio_pika.abc import AbstractExchange, AbstractRobustConnection

from projections.registry import QUEUES
from services.outbox_relay.frames import FramesLane, Read
from services.outbox_relay.reads import SharedReads
from shared import pause_points
from shared.bus import broker
from shared.config import Settings
from shared.store.chain_checkpoints import take_checkpoint
from shared.store.event_store import Cursor, load_cursor, read_after, save_cursor
from shared.worker import metrics as worker_metrics

log = logging.getLogger(__name__)
LEADER_LOCK = 7_170_002
IDLE_POLL_S = 0.1
CURSOR_SAVE_S = 0.2  # a lane saves its cursor at most this often
FRAMES = "frames"  # the frames lane's cursor in relay_cursor
# The leader-lock connection (bootstrap.relay_leader_connection), the frames lane's
# (bootstrap.relay_frames_connection), the broker's (bootstrap.relay_broker): opened
# at the start of each run, closed at its end.
OpenConnection = Callable[[], Awaitable[asyncpg.Connection]]
OpenBroker = Callable[[], Awaitable[AbstractRobustConnection]]
# Publishes the batch after a cursor, with confirms: (new cursor, count).
Publish = Callable[[asyncpg.Connection, Cursor, int], Awaitable[tuple[Cursor, int]]]


async def publish_events_next(
    exchange: AbstractExchange,
    conn: asyncpg.Connection,
    cursor: Cursor,
    limit: int,
    read: Read = read_after,
) -> tuple[Cursor, int]:
    """Publish the subscribers' messages of the next batch after `cursor` with
    confirms; returns (new cursor, count). The caller saves the cursor."""
    batch = await read(conn, cursor, limit=limit)
    if not batch:
        return cursor, 0
    await broker.publish_confirmed(exchange, [event for _, event in batch])
    return batch[-1][0], len(batch)


class Relay:
    def __init__(
        self,
        settings: Settings,
        open_leader_connection: OpenConnection,
        open_frames_connection: OpenConnection,
        open_broker: OpenBroker,
        name: str = "main",
    ) -> None:
        self._open_leader_connection = open_leader_connection
        self._open_frames_connection = open_frames_connection
        self._open_broker = open_broker
        self._exchange_name = settings.exchange
        self._queue_prefix = settings.queue_prefix
        self._partitions = settings.projection_partitions
        self._queue_type = settings.queue_type
        self._batch_size_max = settings.relay_batch_size_max
        self._name = name
        self._key = settings.hmac_key.encode()
        self._checkpoint_interval_s = settings.checkpoint_interval_s
        self._wakes = (asyncio.Event(), asyncio.Event())
        # One read for both lanes where it can be; new in each run (a read of an
        # earlier run may have failed with its connection, or be stale).
        self._reads = SharedReads()
        self.published = 0

    async def run(self, stop: asyncio.Event) -> None:
        self._reads = SharedReads()
        async with contextlib.AsyncExitStack() as opened:
            conn = await self._open_leader_connection()
            opened.push_async_callback(conn.close)
            await conn.execute("SELECT pg_advisory_lock($1)", LEADER_LOCK)
            log.info("relay %s is the leader", self._name)
            await conn.add_listener("ledger_events", self._on_notify)
            frames_conn = await self._open_frames_connection()
            opened.push_async_callback(frames_conn.close)
            connection = await self._open_broker()
            opened.push_async_callback(connection.close)
            # A frame no queue takes comes back and fails the batch: never dropped.
            channel = await connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            exchange = await broker.declare_exchange(channel, self._exchange_name)
            # The projectors' queues exist before the first publish, so events
            # published before a projector first starts wait for it in its queue.
            # Those of the other queue type are left bound (shared/bus/queue_types.py).
            await broker.declare_projection_queues(
                channel,
                exchange,
                self._queue_prefix,
                QUEUES,
                self._partitions,
                self._queue_type,
            )
            frames = await broker.declare_frames_exchange(channel, exchange)
            await self._lanes(conn, frames_conn, exchange, frames, stop)

    def _on_notify(self, *_: object) -> None:
        self._reads.notified()
        for wake in self._wakes:
            wake.set()

    async def _lanes(
        self,
        conn: asyncpg.Connection,
        frames_conn: asyncpg.Connection,
        exchange: AbstractExchange,
        frames: AbstractExchange,
        stop: asyncio.Event,
    ) -> None:
        """Run both lanes until `stop`; the first to fail fails the run (and the
        other is cancelled: its cursor is where its last confirmed batch left it)."""
        reads = self._reads
        events: Publish = partial(
            publish_events_next, exchange, read=partial(reads.read, lane=self._name)
        )
        framed: Publish = FramesLane(
            frames, self._partitions, partial(reads.read, lane=FRAMES)
        )
        # An earlier version had one lane: the frames lane starts where it stood,
        # saved before either lane moves (else a subscribers' save followed by a
        # frames failure would start the frames lane past what it never sent).
        await frames_conn.execute(
            "INSERT INTO relay_cursor (relay, position)"
            " SELECT $1, position FROM relay_cursor WHERE relay = $2"
            " ON CONFLICT (relay) DO NOTHING",
            FRAMES,
            self._name,
        )
        frames_from = await load_cursor(frames_conn, FRAMES)
        main_from = await load_cursor(conn, self._name)
        lanes = [
            asyncio.ensure_future(
                self._loop(conn, Lane(self._name, events, main_from), stop)
            ),
            asyncio.ensure_future(
                self._loop(frames_conn, Lane(FRAMES, framed, frames_from), stop)
            ),
        ]
        try:
            done, _ = await asyncio.wait(lanes, return_when=asyncio.FIRST_EXCEPTION)
            for lane in done:
                lane.result()  # raises what failed it
        finally:
            for lane in lanes:
                lane.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)

    async def _loop(
        self, conn: asyncpg.Connection, lane: Lane, stop: asyncio.Event
    ) -> None:
        """Publish batch after batch; after a batch short of the bound, wait for a
        NOTIFY (or IDLE_POLL_S). The cursor is saved after a confirmed batch at most
        every CURSOR_SAVE_S (the first at once), and on the way out. The subscribers'
        lane also takes the chain-head checkpoints and counts what it published."""
        subscribers = lane.name == self._name
        wake = self._wakes[0 if subscribers else 1]
        cursor = lane.start
        saved = SavedCursor(conn, lane.name, cursor)
        checkpoint_due = time.monotonic() + self._checkpoint_interval_s
        while not stop.is_set():
            wake.clear()
            started = time.monotonic()
            cursor, count = await lane.publish(conn, cursor, self._batch_size_max)
            if count and subscribers:
                await pause_points.pause("relay.after_confirm")  # test-only
            await saved.when_due(cursor)
            if count and subscribers:
                self.published += count
                worker_metrics.relay_published(
                    count, time.monotonic() - started, cursor.position
                )
            if subscribers and time.monotonic() >= checkpoint_due:
                await take_checkpoint(conn, self._key)
                checkpoint_due = time.monotonic() + self._checkpoint_interval_s
            if count == self._batch_size_max:
                continue  # a backlog: read on at once
            # Anything committed since this batch's read began has notified and set
            # `wake` (cleared before the read): no read is needed to find out.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(saved.wait_s(cursor)):  # no task
                    await wake.wait()
            await saved.when_due(cursor)
        await saved.now(cursor)


class SavedCursor:
    """A lane's cursor as saved in relay_cursor: saved at most every CURSOR_SAVE_S.
    A cursor saved late only means more is published again after a crash (the
    projectors skip it by stream version, subscribers by event id), and it spares a
    commit per batch."""

    def __init__(self, conn: asyncpg.Connection, name: str, cursor: Cursor) -> None:
        self._conn = conn
        self._name = name
        self._saved = cursor
        self._due = 0.0  # the first confirmed batch is saved at once

    async def when_due(self, cursor: Cursor) -> None:
        if cursor != self._saved and time.monotonic() >= self._due:
            await self.now(cursor)

    async def now(self, cursor: Cursor) -> None:
        if cursor != self._saved:
            await save_cursor(self._conn, self._name, cursor)
            self._saved = cursor
            self._due = time.monotonic() + CURSOR_SAVE_S

    def wait_s(self, cursor: Cursor) -> float:
        """How long the lane may wait idle: until the next save if one is pending."""
        if cursor == self._saved:
            return IDLE_POLL_S
        return min(IDLE_POLL_S, max(0.0, self._due - time.monotonic()))


class Lane(msgspec.Struct, frozen=True):
    """One of the relay's two readers: its cursor's name, what it publishes, and
    where it starts."""

    name: str
    publish: Publish
    start: Cursor
