"""`ledger webhooks`: queue each event for the endpoints that want it, then deliver.

Two kinds of task share one process:

- **The intake** consumes the webhook queue (shared/bus/webhook_queue.py; a single
  active consumer, so one worker at a time takes it, in the relay's order). Each
  message becomes its deliveries (services/webhooks/deliveries.queue_event) in one
  transaction, and is acked only after that commits: a crash before the ack gets the
  message redelivered, and the unique (endpoint, event) pair keeps it from being
  queued twice. A body that is not an event is rejected (it can never be queued).
- **LEDGER_WEBHOOK_SENDERS senders**, each claiming one endpoint at a time and
  sending its due deliveries in order (services/webhooks/deliveries.py,
  services/webhooks/sender.py). Every worker process runs senders, the standbys of the
  intake too: an endpoint's claim is a PostgreSQL advisory lock, never two at once.

A third task, **the sweep**, deletes delivered and failed deliveries older than
LEDGER_WEBHOOK_RETENTION_DAYS, in bounded batches (services/webhooks/retention.py).

A sender with nothing due looks again after LEDGER_WEBHOOK_POLL_INTERVAL_S (or as
soon as this process's intake queued something). When the worker starts, it binds
the queue to every business that has an endpoint (idempotent), which repairs a queue
deleted by hand. After a switch of LEDGER_QUEUE_TYPE it first takes what the other
type's queue holds (services/webhooks/old_queue.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp
import asyncpg
import msgspec
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from services.webhooks import deliveries, retention, sender
from services.webhooks.old_queue import take_old_queue
from services.webhooks.secrets import open_secret
from shared import pause_points
from shared.bus import webhook_queue
from shared.config import Settings
from shared.personal_data import PersonalDataError

log = logging.getLogger("ledger.webhooks")
PREFETCH = 100
# Deliveries a sender sends to one endpoint before it lets its claim go.
DELIVERIES_PER_CLAIM = 100
# The attempt's error when the endpoint's secret does not open (the worker logs why).
SECRET_ERROR = "the endpoint's secret cannot be opened by the worker (master key)"
_header = msgspec.json.Decoder(deliveries.EventHeader)


class WebhookWorker:
    def __init__(
        self,
        settings: Settings,
        open_pool: Callable[[], Awaitable[asyncpg.Pool]],
        open_broker: Callable[[], Awaitable[AbstractRobustConnection]],
    ) -> None:
        self.settings = settings
        self._open_pool = open_pool
        self._open_broker = open_broker
        self._queued = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Take in and deliver until `stop` is set (a failure raises: the caller's
        loop restarts the worker, shared/worker/loop.py)."""
        pool = await self._open_pool()
        try:
            connection = await self._open_broker()
            try:
                async with sender.client_session(self.settings) as session:
                    await self._run_tasks(pool, connection, session, stop)
            finally:
                await connection.close()
        finally:
            await pool.close()

    async def _run_tasks(
        self,
        pool: asyncpg.Pool,
        connection: AbstractRobustConnection,
        session: aiohttp.ClientSession,
        stop: asyncio.Event,
    ) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._intake(pool, connection, stop))
            group.create_task(self._sweeper(pool, stop))
            for _ in range(self.settings.webhook_senders):
                group.create_task(self._sender(pool, session, stop))

    async def _intake(
        self,
        pool: asyncpg.Pool,
        connection: AbstractRobustConnection,
        stop: asyncio.Event,
    ) -> None:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        settings = self.settings
        exchange, queue = await webhook_queue.declare(
            channel, settings.exchange, settings.queue_type
        )
        business_ids = await _businesses_with_endpoints(pool)
        for business_id in business_ids:
            await queue.bind(exchange, webhook_queue.business_key(business_id))
        await take_old_queue(
            settings, connection, business_ids, lambda m: self._take(pool, m)
        )
        consumer = asyncio.ensure_future(self._consume(pool, queue))
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({consumer, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if consumer.done():
            consumer.result()  # the consumer failed: raise its error
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await channel.close()

    async def _consume(self, pool: asyncpg.Pool, queue: AbstractQueue) -> None:
        async with queue.iterator() as messages:
            async for message in messages:
                await self._take(pool, message)

    async def _sweeper(self, pool: asyncpg.Pool, stop: asyncio.Event) -> None:
        """Delete the settled deliveries past the retention now, then every
        retention.SWEEP_INTERVAL_S until `stop`."""
        while not stop.is_set():
            deleted = await retention.sweep(pool, self.settings.webhook_retention_days)
            if deleted:
                log.info(
                    "webhooks: %d settled deliveries past retention deleted", deleted
                )
            try:
                async with asyncio.timeout(retention.SWEEP_INTERVAL_S):
                    await stop.wait()
            except TimeoutError:
                pass

    async def _take(self, pool: asyncpg.Pool, message: AbstractIncomingMessage) -> None:
        try:
            event = _header.decode(message.body)
        except msgspec.DecodeError:
            log.error("webhooks: message %s is not an event", message.message_id)
            await message.reject(requeue=False)
            return
        async with pool.acquire() as conn, conn.transaction():
            added = await deliveries.queue_event(conn, event, message.body)
        await message.ack()
        if added:
            self._queued.set()

    async def _sender(
        self, pool: asyncpg.Pool, session: aiohttp.ClientSession, stop: asyncio.Event
    ) -> None:
        async with pool.acquire() as conn:
            while not stop.is_set():
                if await self._deliver_one_endpoint(conn, session):
                    continue
                self._queued.clear()
                try:
                    async with asyncio.timeout(self.settings.webhook_poll_interval_s):
                        await self._queued.wait()
                except TimeoutError:
                    pass

    async def _deliver_one_endpoint(
        self, conn: asyncpg.Connection, session: aiohttp.ClientSession
    ) -> bool:
        """Claim an endpoint with due work and send its due deliveries in order
        (until one fails); False when there was none to claim."""
        endpoint = await deliveries.claim_endpoint(conn)
        if endpoint is None:
            return False
        try:
            secret = _opened_secret(endpoint)
            for _ in range(DELIVERIES_PER_CLAIM):
                head = await deliveries.due_head(conn, endpoint.id)
                if head is None:
                    break
                if not await self._send(conn, session, endpoint, head, secret):
                    break
        finally:
            await deliveries.release_endpoint(conn, endpoint.id)
        return True

    async def _send(
        self,
        conn: asyncpg.Connection,
        session: aiohttp.ClientSession,
        endpoint: deliveries.Endpoint,
        head: deliveries.Head,
        secret: str | None,
    ) -> bool:
        """One attempt at the head, recorded; whether it succeeded."""
        result = await self._attempt(session, endpoint, head, secret)
        if result.ok:
            await pause_points.pause("webhooks.after_send")  # test-only, inert
            await deliveries.record_success(
                conn, endpoint.id, head, result.status_code, result.response
            )
            return True
        failure = (result.status_code, result.error, result.response)
        enabled = await deliveries.record_failure(
            conn, endpoint.id, head, failure, self.settings
        )
        log.warning(
            "webhook delivery %d to endpoint %d failed: %s%s",
            head.id,
            endpoint.id,
            result.error,
            "" if enabled else " (endpoint disabled)",
            extra={"event": "webhook.failed", "event_id": str(head.event_id)},
        )
        return False

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        endpoint: deliveries.Endpoint,
        head: deliveries.Head,
        secret: str | None,
    ) -> sender.Attempt:
        """One attempt at the head; never raises (cancellation aside).

        This is a process edge for one endpoint: whatever goes wrong here that is the
        worker's own (a secret that does not open, an error sender.attempt does not
        expect) fails this endpoint's attempt only. It is logged with the endpoint and
        the event, recorded as a failed attempt like any other (so the backoff and the
        disable rule apply), and the other senders and the intake run on: an error
        escaping the task group would cancel them all, and their attempts in flight
        would be sent again after the restart.
        """
        if secret is None:
            return sender.Attempt(ok=False, error=SECRET_ERROR)
        try:
            headers = sender.delivery_headers(head.event_id, secret, head.body)
            return await sender.attempt(
                session, self.settings, endpoint.url, headers, head.body
            )
        except Exception as error:  # one endpoint's edge (see the docstring)
            log.exception(
                "webhook delivery %d to endpoint %d: unexpected error",
                head.id,
                endpoint.id,
                extra={"event": "webhook.error", "event_id": str(head.event_id)},
            )
            return sender.Attempt(
                ok=False, error=f"worker error: {type(error).__name__} (logged)"
            )


def _opened_secret(endpoint: deliveries.Endpoint) -> str | None:
    """The endpoint's secret; None, logged, when it does not open (sealed under a
    master key this process was not given, or damaged): its attempts then fail."""
    try:
        return open_secret(endpoint.business_id, endpoint.id, endpoint.secret_sealed)
    except PersonalDataError as error:
        log.error(
            "webhook endpoint %d: its secret does not open: %s",
            endpoint.id,
            error,
            extra={"event": "webhook.secret"},
        )
        return None


async def _businesses_with_endpoints(pool: asyncpg.Pool) -> list[int]:
    rows = await pool.fetch("SELECT DISTINCT business_id FROM webhook_endpoints")
    return [row["business_id"] for row in rows]
