"""Hop 4: the relay. Follows the events table (the outbox) and publishes to RabbitMQ.

It reads committed events in commit order (event_store.read_after), publishes a batch
twice over (shared/bus/broker.py): one message per event on the subscribers' topic
exchange, and one frame per projection partition on the projectors' own exchange, then
waits for the broker's confirms of both, and only then moves its persisted cursor. A
crash between publish and cursor update republishes the batch: at-least-once, and the
projectors dedupe by stream version. Only one relay publishes at a time: each holds a
PostgreSQL advisory lock while it runs, and a standby blocks on it until the leader's
session ends. The leader also takes the chain-head checkpoints
(shared/chain_checkpoints) every `checkpoint_interval_s`.

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

import asyncpg
import msgspec
from aio_pika.abc import AbstractExchange, AbstractRobustConnection

from projections.registry import PROJECTIONS
from shared import pause_points
from shared.bus import broker
from shared.config import Settings
from shared.store.chain_checkpoints import take_checkpoint
from shared.store.event_store import Cursor, load_cursor, read_after, save_cursor
from shared.worker import metrics as worker_metrics

log = logging.getLogger(__name__)
LEADER_LOCK = 7_170_002
IDLE_POLL_S = 0.1
# The leader-lock connection (bootstrap.relay_leader_connection), the broker's
# (bootstrap.relay_broker): opened at the start of each run, closed at its end.
OpenConnection = Callable[[], Awaitable[asyncpg.Connection]]
OpenBroker = Callable[[], Awaitable[AbstractRobustConnection]]


class Exchanges(msgspec.Struct, frozen=True):
    """Where a batch goes: the subscribers' topic exchange, the projectors' frames
    exchange, and how many partitions each projection has."""

    events: AbstractExchange
    frames: AbstractExchange
    partitions: int


async def publish_next(
    conn: asyncpg.Connection, exchanges: Exchanges, cursor: Cursor, limit: int
) -> tuple[Cursor, int]:
    """Publish the next batch after `cursor` with confirms; returns (new cursor, count).

    The cursor is not saved here: the caller saves it after this returns.
    """
    batch = await read_after(conn, cursor, limit=limit)
    if not batch:
        return cursor, 0
    events = [event for _, event in batch]
    bodies = [broker.envelope_body(event) for event in events]
    last = batch[-1][0]
    await asyncio.gather(
        broker.publish_confirmed(exchanges.events, events, bodies),
        broker.publish_frames(
            exchanges.frames, events, bodies, last.position, exchanges.partitions
        ),
    )
    return last, len(batch)


class Relay:
    def __init__(
        self,
        settings: Settings,
        open_leader_connection: OpenConnection,
        open_broker: OpenBroker,
        name: str = "main",
    ) -> None:
        self._open_leader_connection = open_leader_connection
        self._open_broker = open_broker
        self._exchange_name = settings.exchange
        self._queue_prefix = settings.queue_prefix
        self._partitions = settings.projection_partitions
        self._batch_size_max = settings.relay_batch_size_max
        self._name = name
        self._key = settings.hmac_key.encode()
        self._checkpoint_interval_s = settings.checkpoint_interval_s
        self._wake = asyncio.Event()
        self.published = 0

    async def run(self, stop: asyncio.Event) -> None:
        conn = await self._open_leader_connection()
        connection = None
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", LEADER_LOCK)
            log.info("relay %s is the leader", self._name)
            await conn.add_listener("ledger_events", lambda *_: self._wake.set())
            connection = await self._open_broker()
            # A frame no queue takes comes back and fails the batch: never dropped.
            channel = await connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            exchange = await broker.declare_exchange(channel, self._exchange_name)
            # The projections' queues exist before the first publish, so events
            # published before a projector first starts wait for it in its queue.
            for projection in PROJECTIONS:
                await broker.declare_projection_queues(
                    channel, exchange, self._queue_prefix, projection, self._partitions
                )
            frames = await broker.declare_frames_exchange(channel, exchange)
            exchanges = Exchanges(exchange, frames, self._partitions)
            await self._loop(conn, exchanges, stop)
        finally:
            if connection is not None:
                await connection.close()
            await conn.close()

    async def _loop(
        self, conn: asyncpg.Connection, exchanges: Exchanges, stop: asyncio.Event
    ) -> None:
        cursor = await load_cursor(conn, self._name)
        checkpoint_due = time.monotonic() + self._checkpoint_interval_s
        while not stop.is_set():
            self._wake.clear()
            started = time.monotonic()
            cursor, count = await publish_next(
                conn, exchanges, cursor, self._batch_size_max
            )
            if count:
                await pause_points.pause("relay.after_confirm")  # test-only
                await save_cursor(conn, self._name, cursor)
                self.published += count
                worker_metrics.relay_published(
                    count, time.monotonic() - started, cursor.position
                )
            if time.monotonic() >= checkpoint_due:
                await take_checkpoint(conn, self._key)
                checkpoint_due = time.monotonic() + self._checkpoint_interval_s
            if count:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_POLL_S)
