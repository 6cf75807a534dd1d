"""Hop 5: consume a projection's queues and apply events, exactly once in effect.

A projection has LEDGER_PROJECTION_PARTITIONS queues (shared/bus/partitions.py), each
with a single active consumer; every projector of the projection subscribes to all of
them (projections/partition_claims.py orders the subscriptions so that several
projectors share them), so each business is applied by one projector at a time, in
order.

The relay sends each partition one frame per batch (shared/bus/broker.py): the
partition's events of that batch, in order. Frames waiting in the queue are applied
together, up to LEDGER_PROJECTOR_BATCH_SIZE_MAX events (a frame is never split), through
the one apply path (projections/runner.py), then acked: a restarted projector resumes
from its tracking rows, and RabbitMQ redelivers what was not acked. A message an earlier
version left in the queue (one event, or a watermark) is applied the same way.
The projector opens nothing itself: the CLI gives it
openers (services/bootstrap.py names and sizes what they open), and each run opens its
pool and connections afresh, so a restart by shared/worker/loop.py after a failure
reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
import msgspec
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from projections.checkpoints import PartitionProgress
from projections.partition_claims import subscribe_in_turn
from projections.runner import Projection, apply_batch, park, retry_parked
from projections.tracked_versions import TrackedVersions
from shared import pause_points
from shared.bus import broker
from shared.bus.partitions import partition_of_slot
from shared.config import Settings
from shared.events import Envelope
from shared.store.postgres import CONNECTION_ERRORS
from shared.worker import metrics as worker_metrics

log = logging.getLogger(__name__)
ATTEMPTS_MAX = 5
RETRY_DELAY_S = 0.5  # doubled after each failed attempt
# Messages delivered ahead of their acks: frames of up to LEDGER_RELAY_BATCH_SIZE_MAX
# events each (a single event each, for what an earlier version left in a queue).
PREFETCH_FRAMES = 16
# The projector's pool (bootstrap.projector_pool), the session holding its partition
# claims (bootstrap.partition_claims_connection) and its broker connection
# (bootstrap.projector_broker): opened at the start of each run, closed at its end.
OpenPool = Callable[[], Awaitable[asyncpg.Pool]]
OpenConnection = Callable[[], Awaitable[asyncpg.Connection]]
OpenBroker = Callable[[], Awaitable[AbstractRobustConnection]]


class Projector:
    """One projection's consumer: its partition queues, batches, acks after commit."""

    def __init__(
        self,
        settings: Settings,
        projection: Projection,
        *,
        open_pool: OpenPool,
        open_claims: OpenConnection,
        open_broker: OpenBroker,
        attempts_max: int = ATTEMPTS_MAX,
        retry_delay_s: float = RETRY_DELAY_S,
    ) -> None:
        self._settings = settings
        self._projection = projection
        self._open_pool = open_pool
        self._open_claims = open_claims
        self._open_broker = open_broker
        self._attempts_max = attempts_max
        self._retry_delay_s = retry_delay_s
        # Streams with an event parked in this run: their later events are parked at
        # once (each would first retry the parked one), so one bad stream cannot hold
        # the projection up again and again. retry_parked() frees them on restart.
        self._parked_streams: set[str] = set()
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        # The partitions this run has received messages from (logged once each).
        self._receiving: set[int] = set()
        self._tracked = TrackedVersions()

    async def run(self, stop: asyncio.Event) -> None:
        """Open the pool and connections, apply the parked events that now apply,
        subscribe, and apply batches until `stop`; close all on the way out."""
        # Deliveries of an earlier run's channel cannot be acked any more: RabbitMQ
        # redelivers them on this run's channel.
        self._inbox = asyncio.Queue()
        self._receiving = set()
        self._tracked = TrackedVersions()  # what this run's batches committed
        async with contextlib.AsyncExitStack() as opened:
            pool = await self._open_pool()
            opened.push_async_callback(pool.close)
            claims = await self._open_claims()
            opened.push_async_callback(claims.close)
            connection = await self._open_broker()
            opened.push_async_callback(connection.close)
            partitions = self._settings.projection_partitions
            await retry_parked(pool, self._projection, partitions)
            queues = await self._declare_queues(connection)
            subscribing = asyncio.create_task(
                subscribe_in_turn(
                    claims,
                    self._projection.name,
                    queues,
                    lambda queue: queue.consume(self._inbox.put),
                )
            )
            opened.push_async_callback(_cancel, subscribing)
            while not stop.is_set():
                if subscribing.done():
                    subscribing.result()  # raises what failed it
                await self._step(pool)

    async def _declare_queues(
        self, connection: AbstractRobustConnection
    ) -> list[AbstractQueue]:
        """The projection's partition queues, on a channel that prefetches a few
        frames."""
        settings = self._settings
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH_FRAMES)
        exchange = await broker.declare_exchange(channel, settings.exchange)
        return await broker.declare_projection_queues(
            channel,
            exchange,
            settings.queue_prefix,
            self._projection.name,
            settings.projection_partitions,
        )

    async def _step(self, pool: asyncpg.Pool) -> None:
        try:
            async with asyncio.timeout(0.5):  # no task per wait, unlike wait_for
                first = await self._inbox.get()
        except TimeoutError:
            return
        batch = [await self._decoded(first)]
        events = len(batch[0].events)
        while events < self._settings.projector_batch_size_max and (
            not self._inbox.empty()
        ):
            batch.append(await self._decoded(self._inbox.get_nowait()))
            events += len(batch[-1].events)
        await self._handle(pool, batch)

    async def _decoded(self, message: AbstractIncomingMessage) -> Delivery:
        """A message's events: a frame's, a single event's (an earlier version's),
        none for a watermark; a single message that is neither is rejected (logged).
        A frame that does not decode (an event type from a newer writer, say) raises:
        it holds many businesses' events and its position would move the checkpoint
        past them all, so the projector stops, loudly, rather than drop them."""
        if message.type == broker.FRAME_TYPE:
            return Delivery(message, broker.frame_decoder.decode(message.body))
        try:
            if message.type == broker.WATERMARK_TYPE:
                return Delivery(message, [])
            return Delivery(message, [broker.envelope_decoder.decode(message.body)])
        except msgspec.DecodeError:
            log.error("rejecting a message that is no event: %s", message.message_id)
            await message.reject(requeue=False)
            return Delivery(message, [])

    async def _handle(self, pool: asyncpg.Pool, batch: list[Delivery]) -> None:
        started = time.monotonic()
        messages = [delivery.message for delivery in batch]
        self._note_partitions(messages)
        progress = self._progress(messages)
        events = [event for delivery in batch for event in delivery.events]
        applied = 0
        try:
            applied = await apply_batch(
                pool, self._projection, events, progress, self._tracked
            )
        except CONNECTION_ERRORS:
            raise  # nothing acked: the worker restarts and RabbitMQ redelivers
        except Exception:  # a process edge: find the event that fails
            log.exception(
                "%s: batch failed; applying one by one", self._projection.name
            )
            self._tracked.forget()  # what follows moves tracking rows on its own
            for event in events:
                await self._apply_or_park(pool, event)
            # The checkpoints, past the parked events and the empty frames.
            await apply_batch(pool, self._projection, [], progress)
        if applied:
            await pause_points.pause("projector.after_commit")  # test-only
        delivered = [message for message in messages if not message.processed]
        if delivered:
            await delivered[-1].ack(multiple=True)
            worker_metrics.projection_applied(
                self._projection.name, len(events), time.monotonic() - started
            )

    def _progress(self, batch: list[AbstractIncomingMessage]) -> PartitionProgress:
        """Per partition, the highest position the batch delivered (frames carry it
        in their headers, as an earlier version's events and watermarks did): the
        checkpoints move with these, never with the events' own positions, as a frame
        may carry events from past its position (services/outbox_relay/frames.py)."""
        partitions = self._settings.projection_partitions
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

    async def _apply_or_park(self, pool: asyncpg.Pool, event: Envelope) -> None:
        """Apply one event, retrying with back-off (none after the last attempt); an
        event that keeps failing is parked (recorded in projection_parked with its
        error), so it stops only its own stream: the stream's later events are parked
        at once, and all are retried when the projector starts again. Nothing is
        dropped without a record. The caller acks the messages afterwards."""
        error: Exception | None = None
        attempts = 0 if event.stream_id in self._parked_streams else self._attempts_max
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self._retry_delay_s * 2 ** (attempt - 1))
            try:
                await apply_batch(pool, self._projection, [event], self._no_progress())
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

    def _no_progress(self) -> PartitionProgress:
        """One event applied alone moves no checkpoint: the batch's progress is
        recorded once all its events are applied or parked."""
        return PartitionProgress(self._settings.projection_partitions, {})


class Delivery(msgspec.Struct, frozen=True):
    """A message and the events it carries (a frame's, one, or none)."""

    message: AbstractIncomingMessage
    events: list[Envelope]


async def _cancel(task: asyncio.Task[int | None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
