"""Hop 5: consume the projectors' queues and apply events to every projection,
exactly once in effect.

The projectors have LEDGER_PROJECTION_PARTITIONS queues (shared/bus/partitions.py,
named after projections/registry.QUEUES), each with a single active consumer; every
projector subscribes to all of them (projections/partition_claims.py orders the
subscriptions so that several projectors share them), so each business is applied by
one projector at a time, in order.

The relay sends each partition one frame per batch (shared/bus/broker.py): the
partition's events of that batch, in order. Frames waiting in the queue are applied
together, up to LEDGER_PROJECTOR_BATCH_SIZE_MAX events (a frame is never split), to
every projection in one transaction, through the one apply path
(projections/runner.py), then acked: a restarted projector resumes from its tracking
rows, and RabbitMQ redelivers what was not acked. Once, at the first start after the
upgrade, the frames an earlier version left in its per-projection queues are applied
first (projections/legacy_queues.py). The projector opens nothing itself: the CLI
gives it openers (services/bootstrap.py names and sizes what they open), and each run
opens its pool and connections afresh, so a restart by shared/worker/loop.py after a
failure reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from projections.checkpoints import PartitionProgress
from projections.deliveries import Delivery, decoded, progress_of
from projections.legacy_queues import drain_legacy_queues
from projections.partition_claims import subscribe_in_turn
from projections.registry import QUEUES
from projections.runner import Projection, apply_together, park, retry_parked
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
    """The projections' consumer: the partition queues, batches, acks after commit."""

    def __init__(
        self,
        settings: Settings,
        projections: Sequence[Projection],
        *,
        open_pool: OpenPool,
        open_claims: OpenConnection,
        open_broker: OpenBroker,
        attempts_max: int = ATTEMPTS_MAX,
        retry_delay_s: float = RETRY_DELAY_S,
    ) -> None:
        self._settings = settings
        self._projections = tuple(projections)
        self._open_pool = open_pool
        self._open_claims = open_claims
        self._open_broker = open_broker
        self._attempts_max = attempts_max
        self._retry_delay_s = retry_delay_s
        # Per projection, streams with an event parked in this run: their later
        # events are parked at once (each would first retry the parked one), so one
        # bad stream cannot hold the projection up again and again. retry_parked()
        # frees them on restart.
        self._parked_streams: dict[str, set[str]] = {
            projection.name: set() for projection in self._projections
        }
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        # The partitions this run has received messages from (logged once each).
        self._receiving: set[int] = set()
        self._tracked = self._memories()

    def _memories(self) -> dict[str, TrackedVersions]:
        return {projection.name: TrackedVersions() for projection in self._projections}

    async def run(self, stop: asyncio.Event) -> None:
        """Open the pool and connections, apply the parked events that now apply and
        what an earlier version's queues hold, subscribe, and apply batches until
        `stop`; close all on the way out."""
        # Deliveries of an earlier run's channel cannot be acked any more: RabbitMQ
        # redelivers them on this run's channel.
        self._inbox = asyncio.Queue()
        self._receiving = set()
        self._tracked = self._memories()  # what this run's batches committed
        for parked in self._parked_streams.values():
            parked.clear()  # retry_parked() below retries them
        async with contextlib.AsyncExitStack() as opened:
            pool = await self._open_pool()
            opened.push_async_callback(pool.close)
            claims = await self._open_claims()
            opened.push_async_callback(claims.close)
            connection = await self._open_broker()
            opened.push_async_callback(connection.close)
            partitions = self._settings.projection_partitions
            for projection in self._projections:
                await retry_parked(pool, projection, partitions)
            queues = await self._declare_queues(connection)
            await drain_legacy_queues(
                self._settings, self._projections, pool, claims, connection
            )
            subscribing = asyncio.create_task(
                subscribe_in_turn(
                    claims, QUEUES, queues, lambda queue: queue.consume(self._inbox.put)
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
        """The partition queues, on a channel that prefetches a few frames."""
        settings = self._settings
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH_FRAMES)
        exchange = await broker.declare_exchange(channel, settings.exchange)
        return await broker.declare_projection_queues(
            channel,
            exchange,
            settings.queue_prefix,
            QUEUES,
            settings.projection_partitions,
            settings.queue_type,
        )

    async def _step(self, pool: asyncpg.Pool) -> None:
        try:
            async with asyncio.timeout(0.5):  # no task per wait, unlike wait_for
                first = await self._inbox.get()
        except TimeoutError:
            return
        batch = [await decoded(first)]
        events = len(batch[0].events)
        while events < self._settings.projector_batch_size_max and (
            not self._inbox.empty()
        ):
            batch.append(await decoded(self._inbox.get_nowait()))
            events += len(batch[-1].events)
        await self._handle(pool, batch)

    async def _handle(self, pool: asyncpg.Pool, batch: list[Delivery]) -> None:
        started = time.monotonic()
        messages = [delivery.message for delivery in batch]
        self._note_partitions(messages)
        progress = progress_of(messages, self._settings.projection_partitions)
        events = [event for delivery in batch for event in delivery.events]
        projections = self._projections
        applied = 0
        try:
            applied = await apply_together(
                pool, projections, events, progress, self._tracked
            )
        except CONNECTION_ERRORS:
            raise  # nothing acked: the worker restarts and RabbitMQ redelivers
        except Exception:  # a process edge: find the event that fails
            log.exception("batch failed; applying each projection alone")
            for memory in self._tracked.values():
                memory.forget()  # what follows moves tracking rows on its own
            for projection in projections:
                await self._alone_or_one_by_one(pool, projection, events)
            # The checkpoints, past the parked events and the empty frames.
            await apply_together(pool, projections, [], progress)
        if applied:
            await pause_points.pause("projector.after_commit")  # test-only
        delivered = [message for message in messages if not message.processed]
        if delivered:
            await delivered[-1].ack(multiple=True)
            duration_s = time.monotonic() - started
            for projection in projections:
                worker_metrics.projection_applied(
                    projection.name, len(events), duration_s
                )

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
                log.info("receiving partition %d of %d", partition, partitions)

    async def _alone_or_one_by_one(
        self, pool: asyncpg.Pool, projection: Projection, events: list[Envelope]
    ) -> None:
        """The batch to one projection (so a stream failing in the other does not
        slow this one down); if it fails here too, event by event, parking."""
        try:
            await apply_together(pool, [projection], events, self._no_progress())
            return
        except CONNECTION_ERRORS:
            raise
        except Exception:  # a process edge: find the event that fails
            log.exception("%s: batch failed; applying one by one", projection.name)
        for event in events:
            await self._apply_or_park(pool, projection, event)

    async def _apply_or_park(
        self, pool: asyncpg.Pool, projection: Projection, event: Envelope
    ) -> None:
        """Apply one event to one projection, retrying with back-off (none after the
        last attempt); an event that keeps failing is parked (recorded in
        projection_parked with its error), so it stops only its own stream in that
        projection: the stream's later events are parked at once, and all are
        retried when the projector starts again. Nothing is dropped without a
        record. The caller acks the messages afterwards."""
        error: Exception | None = None
        parked = self._parked_streams[projection.name]
        attempts = 0 if event.stream_id in parked else self._attempts_max
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self._retry_delay_s * 2 ** (attempt - 1))
            try:
                await apply_together(pool, [projection], [event], self._no_progress())
                return
            except CONNECTION_ERRORS:
                raise
            except Exception as failure:  # a process edge: log the event id
                error = failure
                log.warning(
                    "%s: event %s failed (attempt %d): %r",
                    projection.name,
                    event.event_id,
                    attempt + 1,
                    failure,
                )
        parked.add(event.stream_id)
        reason = repr(error) if error else "an earlier event of its stream is parked"
        await park(pool, projection.name, event, reason)

    def _no_progress(self) -> PartitionProgress:
        """One event applied alone moves no checkpoint: the batch's progress is
        recorded once all its events are applied or parked."""
        return PartitionProgress(self._settings.projection_partitions, {})


async def _cancel(task: asyncio.Task[int | None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
