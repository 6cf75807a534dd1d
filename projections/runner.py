"""Hop 5: consume a projection's queues and apply events, exactly once in effect.

A projection has LEDGER_PROJECTION_PARTITIONS queues (shared/bus/partitions.py), each
with
a single active consumer; every projector of the projection subscribes to all of them
(projections/partition_claims.py orders the subscriptions so that several projectors
share them), so each business is applied by one projector at a time, in order.

Messages are applied in batches; each batch's read-model changes and the projection's
tracking rows (last version per stream) commit in one transaction, then the messages
are acked. A delivery at or below the tracked version is a duplicate and is skipped;
one above tracked + 1 means events are missing, and they are read from the event store
and applied first. A restarted projector resumes from its tracking rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
import msgspec
from aio_pika.abc import AbstractIncomingMessage

from projections.checkpoints import (
    PartitionProgress,
    record_partitions,
    record_position,
)
from projections.partition_claims import subscribe_in_turn
from shared import pause_points
from shared.bus import broker
from shared.bus.partitions import partition_of_slot
from shared.config import Settings
from shared.events import Envelope
from shared.store.event_store import load_stream
from shared.store.postgres import CONNECTION_ERRORS, create_pool
from shared.worker import metrics as worker_metrics

log = logging.getLogger(__name__)
ATTEMPTS_MAX = 5
RETRY_DELAY_S = 0.5  # doubled after each failed attempt
# Applies new events, in order, inside the caller's transaction. Given the whole batch
# at once, a projection may write it with a few set-based statements.
Apply = Callable[[asyncpg.Connection, Sequence[Envelope]], Awaitable[None]]


class Projection(msgspec.Struct, frozen=True):
    name: str
    apply: Apply


async def apply_batch(
    pool: asyncpg.Pool,
    projection: Projection,
    events: Sequence[Envelope],
    progress: PartitionProgress | None = None,
) -> int:
    """Apply events in one transaction; returns how many were new (not duplicates).

    Without `progress` the projection's checkpoint moves to the batch's highest
    position; with it, the partitions' checkpoints move (projections/checkpoints.py).
    """
    async with pool.acquire() as conn, conn.transaction():
        applied = await apply_in_transaction(conn, projection, events, progress)
        if applied:
            await pause_points.pause("projector.before_commit")  # test-only
        return applied


async def apply_in_transaction(
    conn: asyncpg.Connection,
    projection: Projection,
    events: Sequence[Envelope],
    progress: PartitionProgress | None = None,
) -> int:
    """apply_batch inside the caller's transaction (a rebuild applies to its own
    tables: the connection's search_path names them)."""
    streams = sorted({event.stream_id for event in events})
    rows = await conn.fetch(
        "SELECT stream_id, version FROM projection_tracking"
        " WHERE projection = $1 AND stream_id = ANY($2::text[]) FOR UPDATE",
        projection.name,
        streams,
    )
    tracked = {row["stream_id"]: row["version"] for row in rows}
    advanced: dict[str, int] = {}
    fresh: list[Envelope] = []
    for event in events:
        fresh.extend(await _new_events(conn, tracked, event))
        advanced[event.stream_id] = tracked.get(event.stream_id, 0)
    if fresh:
        await projection.apply(conn, fresh)
        await _track(conn, projection.name, advanced)
    if progress is not None:
        await record_partitions(conn, projection.name, progress)
    elif fresh:
        position = max(event.position for event in events)
        await record_position(conn, projection.name, position)
    else:
        return 0
    await conn.execute("SELECT pg_notify('ledger_projected', $1)", projection.name)
    return len(fresh)


async def _new_events(
    conn: asyncpg.Connection, tracked: dict[str, int], event: Envelope
) -> list[Envelope]:
    """The event if it is new, preceded by any of its stream's events not yet seen
    (read from the store); nothing if it was applied before."""
    version = tracked.get(event.stream_id, 0)
    if event.version <= version:
        return []
    missing: list[Envelope] = []
    if event.version > version + 1:
        missing = await load_stream(
            conn,
            event.stream_id,
            after_version=version,
            up_to_version=event.version - 1,
        )
    tracked[event.stream_id] = event.version
    return [*missing, event]


async def _track(
    conn: asyncpg.Connection, projection: str, tracked: dict[str, int]
) -> None:
    await conn.execute(
        "INSERT INTO projection_tracking (projection, stream_id, version)"
        " SELECT $1, * FROM unnest($2::text[], $3::integer[])"
        " ON CONFLICT (projection, stream_id) DO UPDATE SET version = excluded.version",
        projection,
        list(tracked),
        list(tracked.values()),
    )


class Projector:
    """One projection's consumer: its partition queues, batches, acks after commit."""

    def __init__(
        self,
        settings: Settings,
        projection: Projection,
        attempts_max: int = ATTEMPTS_MAX,
        retry_delay_s: float = RETRY_DELAY_S,
    ) -> None:
        self._settings = settings
        self._projection = projection
        self._attempts_max = attempts_max
        self._retry_delay_s = retry_delay_s
        # Streams with an event parked in this run: their later events are parked at
        # once (each would first retry the parked one), so one bad stream cannot hold
        # the projection up again and again. retry_parked() frees them on restart.
        self._parked_streams: set[str] = set()
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        # The partitions this run has received messages from (logged once each).
        self._receiving: set[int] = set()

    async def run(self, stop: asyncio.Event) -> None:
        # Deliveries of an earlier run's channel cannot be acked any more: RabbitMQ
        # redelivers them on this run's channel.
        self._inbox = asyncio.Queue()
        self._receiving = set()
        pool = await create_pool(
            self._settings.database_url, max_size=2, custom_plans=True
        )
        # Holds this projector's partition claims (session advisory locks).
        claims: asyncpg.Connection | None = None
        connection = None
        subscribing: asyncio.Task[int | None] | None = None
        try:
            claims = await asyncpg.connect(self._settings.database_url)
            connection = await broker.connect(self._settings.amqp_url)
            await retry_parked(
                pool, self._projection, self._settings.projection_partitions
            )
            channel = await connection.channel()
            await channel.set_qos(
                prefetch_count=self._settings.projector_batch_size_max * 2
            )
            exchange = await broker.declare_exchange(channel, self._settings.exchange)
            queues = await broker.declare_projection_queues(
                channel,
                exchange,
                self._settings.queue_prefix,
                self._projection.name,
                self._settings.projection_partitions,
            )
            subscribing = asyncio.create_task(
                subscribe_in_turn(
                    claims,
                    self._projection.name,
                    queues,
                    lambda queue: queue.consume(self._inbox.put),
                )
            )
            while not stop.is_set():
                if subscribing.done():
                    subscribing.result()  # raises what failed it
                await self._step(pool)
        finally:
            if subscribing is not None:
                subscribing.cancel()
                await asyncio.gather(subscribing, return_exceptions=True)
            if connection is not None:
                await connection.close()
            if claims is not None:
                await claims.close()
            await pool.close()

    async def _step(self, pool: asyncpg.Pool) -> None:
        try:
            first = await asyncio.wait_for(self._inbox.get(), 0.5)
        except TimeoutError:
            return
        batch = [first]
        while (
            len(batch) < self._settings.projector_batch_size_max
            and not self._inbox.empty()
        ):
            batch.append(self._inbox.get_nowait())
        await self._handle(pool, batch)

    async def _handle(
        self, pool: asyncpg.Pool, batch: list[AbstractIncomingMessage]
    ) -> None:
        started = time.monotonic()
        self._note_partitions(batch)
        progress = self._progress(batch)
        events: list[Envelope] = []
        for message in batch:
            if message.type == broker.WATERMARK_TYPE:
                continue  # its position is in `progress`; acked with the batch
            try:
                events.append(broker.envelope_decoder.decode(message.body))
            except msgspec.DecodeError:
                log.error(
                    "rejecting a message that is not an event: %s", message.message_id
                )
                await message.reject(requeue=False)
        delivered = [m for m in batch if not m.processed]
        applied = 0
        try:
            applied = await apply_batch(pool, self._projection, events, progress)
        except CONNECTION_ERRORS:
            raise  # nothing acked: the worker restarts and RabbitMQ redelivers
        except Exception:  # a process edge: find the event that fails
            log.exception(
                "%s: batch failed; applying one by one", self._projection.name
            )
            applicable = [m for m in delivered if m.type != broker.WATERMARK_TYPE]
            for message, event in zip(applicable, events, strict=True):
                await self._apply_or_park(pool, message, event)
            if progress is not None:  # the parked events' and watermarks' positions
                await apply_batch(pool, self._projection, [], progress)
            delivered = [m for m in delivered if not m.processed]
        if applied:
            await pause_points.pause("projector.after_commit")  # test-only
        if delivered:
            await delivered[-1].ack(multiple=True)
            worker_metrics.projection_applied(
                self._projection.name, len(delivered), time.monotonic() - started
            )

    def _progress(
        self, batch: list[AbstractIncomingMessage]
    ) -> PartitionProgress | None:
        """Per partition, the highest position the batch delivered (events and
        watermarks carry it in their headers); None with one partition."""
        partitions = self._settings.projection_partitions
        if partitions == 1:
            return None
        positions: dict[int, int] = {}
        for message in batch:
            headers = message.headers or {}
            slot, position = headers.get("business_slot"), headers.get("position")
            if isinstance(slot, int) and isinstance(position, int):
                partition = partition_of_slot(slot, partitions)
                positions[partition] = max(positions.get(partition, 0), position)
        return PartitionProgress(partitions=partitions, positions=positions)

    def _note_partitions(self, batch: list[AbstractIncomingMessage]) -> None:
        """Log each partition the first time this run receives from it: the
        partitions a projector is the active consumer of (and takes over)."""
        partitions = self._settings.projection_partitions
        for message in batch:
            slot = (message.headers or {}).get("business_slot")
            if not isinstance(slot, int):
                continue
            partition = partition_of_slot(slot, partitions)
            if partition not in self._receiving:
                self._receiving.add(partition)
                log.info(
                    "%s: receiving partition %d of %d",
                    self._projection.name,
                    partition,
                    partitions,
                )

    async def _apply_or_park(
        self, pool: asyncpg.Pool, message: AbstractIncomingMessage, event: Envelope
    ) -> None:
        """Apply one event, retrying with back-off (none after the last attempt); an
        event that keeps failing is parked (recorded in projection_parked with its
        error) and acked, so it stops only its own stream: the stream's later events
        are parked at once, and all are retried when the projector starts again.
        Nothing is dropped without a record."""
        error: Exception | None = None
        attempts = 0 if event.stream_id in self._parked_streams else self._attempts_max
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self._retry_delay_s * 2 ** (attempt - 1))
            try:
                progress = self._progress([message])
                await apply_batch(pool, self._projection, [event], progress)
                await message.ack()
                return
            except CONNECTION_ERRORS:
                raise
            except Exception as failure:  # a process edge: log the event id
                error = failure
                log.warning(
                    "%s: event %s failed (attempt %d): %r",
                    self._projection.name,
                    event.event_id,
                    attempt + 1,
                    failure,
                )
        self._parked_streams.add(event.stream_id)
        reason = repr(error) if error else "an earlier event of its stream is parked"
        await park(pool, self._projection.name, event, reason)
        await message.ack()


async def park(
    pool: asyncpg.Pool, projection: str, event: Envelope, error: str
) -> None:
    log.error(
        "%s: parking event %s of %s",
        projection,
        event.event_id,
        event.stream_id,
        extra={
            "event": "projection.parked",
            "projection": projection,
            "event_id": str(event.event_id),
            "stream_id": event.stream_id,
            "position": event.position,
        },
    )
    worker_metrics.PROJECTION_PARKED.labels(projection=projection).inc()
    await pool.execute(
        "INSERT INTO projection_parked"
        " (projection, event_id, stream_id, version, position, error)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        projection,
        event.event_id,
        event.stream_id,
        event.version,
        event.position,
        error,
    )


async def retry_parked(
    pool: asyncpg.Pool, projection: Projection, partitions: int = 1
) -> None:
    """Apply, from the store, the events parked by earlier runs (the cause may be
    gone); each one that applies now leaves the parked list. With partitions, the
    checkpoints stay where the queues' deliveries put them."""
    progress = None if partitions == 1 else PartitionProgress(partitions, {})
    rows = await pool.fetch(
        "SELECT event_id, stream_id, version FROM projection_parked"
        " WHERE projection = $1 ORDER BY position",
        projection.name,
    )
    for row in rows:
        try:
            async with pool.acquire() as conn:
                events = await load_stream(
                    conn,
                    row["stream_id"],
                    after_version=row["version"] - 1,
                    up_to_version=row["version"],
                )
            await apply_batch(pool, projection, events, progress)
        except CONNECTION_ERRORS:
            raise
        except Exception:  # a process edge: still failing, stays parked
            log.exception(
                "%s: parked event %s still fails", projection.name, row["event_id"]
            )
            continue
        await pool.execute(
            "DELETE FROM projection_parked WHERE projection = $1 AND event_id = $2",
            projection.name,
            row["event_id"],
        )
