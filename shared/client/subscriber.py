"""Subscriber: consume the ledger's events from RabbitMQ, typed and deduplicated.

It binds its own durable queue to the topic exchange (`ledger.events`; routing keys
`<business_id>.<event type>`, so `17.transaction.*` or `17.#`), decodes each message
body into `shared.events.Envelope` (the payload typed by the `LedgerEvent` union),
skips an event id it has already handled, awaits the handler, and acks only after the
handler returned. A handler that raises gets the message back (nack, requeue) after
`requeue_pause_s`; a body that is not an event is rejected without requeue (to the
queue's dead-letter exchange, if it has one), since it can never decode.

Deduplication. Delivery is at least once: the relay republishes after a crash, and
RabbitMQ redelivers whatever was unacked when a connection dropped. `seen` decides
what counts as already handled:

- `RecentEvents` (the default) keeps the last `capacity` event ids in memory. It is
  free and needs nothing, but it forgets on restart and beyond its capacity: a
  redelivery after a restart (a handler that ran but whose ack was lost) reaches the
  handler again. Enough when the handler is idempotent itself.
- Any object with `seen`/`remember` (the `SeenEvents` protocol) backed by your own
  database survives restarts. For an exactly-once effect, record the event id in the
  same transaction as the handler's own writes (`INSERT ... ON CONFLICT DO NOTHING`
  on a processed-events table) and let `seen` read that table: `remember` runs after
  the handler, so a crash between the two would otherwise repeat the handler.

Catching up. A subscriber that starts late (or lost its queue) declares and binds its
queue first (`async with`), then reads the feed with `catch_up(api)`, then consumes
with `run(stop)`: every event arrives, once, each stream in version order (README
"Subscribing").
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, Self

import msgspec
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from shared.bus import broker
from shared.client.closing import ClosedOnExit
from shared.client.http import LedgerClient
from shared.events import Envelope

log = logging.getLogger(__name__)
Handler = Callable[[Envelope], Awaitable[None]]
_envelope = msgspec.json.Decoder(Envelope)


class SeenEvents(Protocol):
    """Which event ids were handled already (see the module docstring)."""

    async def seen(self, event_id: uuid.UUID) -> bool: ...

    async def remember(self, event_id: uuid.UUID) -> None: ...


class RecentEvents:
    """The last `capacity` event ids handled, in memory (the oldest forgotten first)."""

    def __init__(self, capacity: int = 100_000) -> None:
        assert capacity > 0
        self.capacity = capacity
        self._ids: OrderedDict[uuid.UUID, None] = OrderedDict()

    async def seen(self, event_id: uuid.UUID) -> bool:
        return event_id in self._ids

    async def remember(self, event_id: uuid.UUID) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)


def topic_matches(pattern: str, routing_key: str) -> bool:
    """RabbitMQ's topic rule: words split on ".", `*` is exactly one word, `#` is
    zero or more. `catch_up` filters the feed with it as the exchange filters the
    queue, so both ways deliver the same events."""
    return _words_match(pattern.split("."), routing_key.split("."))


def _words_match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_words_match(rest, words[skip:]) for skip in range(len(words) + 1))
    if not words or (head != "*" and head != words[0]):
        return False
    return _words_match(rest, words[1:])


class Subscriber(ClosedOnExit):
    """`async with Subscriber(amqp_url, "billing.ledger", ["17.#"], handle) as s:`
    then `await s.catch_up(api)` (optional) and `await s.run(stop)`."""

    def __init__(
        self,
        amqp_url: str,
        queue_name: str,
        routing_keys: Sequence[str],
        handler: Handler,
        *,
        exchange: str = "ledger.events",
        seen: SeenEvents | None = None,
        prefetch_count: int = 32,
        requeue_pause_s: float = 1.0,
    ) -> None:
        self.amqp_url = amqp_url
        self.queue_name = queue_name
        self.routing_keys = list(routing_keys)
        self.handler = handler
        self.exchange = exchange
        self.seen: SeenEvents = seen or RecentEvents()
        self.prefetch_count = prefetch_count
        self.requeue_pause_s = requeue_pause_s
        self._connection: AbstractRobustConnection | None = None
        self._queue: AbstractQueue | None = None

    async def __aenter__(self) -> Self:
        """Connect, then declare the exchange and the durable queue and bind it: from
        here on the queue keeps every matching event until it is consumed."""
        self._connection = await broker.connect(self.amqp_url)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch_count)
        exchange = await broker.declare_exchange(channel, self.exchange)
        self._queue = await channel.declare_queue(self.queue_name, durable=True)
        for key in self.routing_keys:
            await self._queue.bind(exchange, routing_key=key)
        return self

    async def close(self) -> None:
        """Close the connection: unacked messages go back to the queue."""
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._queue = None

    async def deliver(self, event: Envelope) -> bool:
        """Hand one event to the handler unless it was handled already; True if it
        was handed over. The handler's exception propagates (nothing remembered)."""
        if await self.seen.seen(event.event_id):
            return False
        await self.handler(event)
        await self.seen.remember(event.event_id)
        return True

    async def catch_up(
        self, api: LedgerClient, after: int = 0, limit: int = 1000
    ) -> int:
        """Deliver the feed's events after `after` (a position) that the routing keys
        match, page by page, up to its head; the last position read, to pass as
        `after` next time. The feed holds the API key's business's events only."""
        while True:
            page = await api.events(after=after, limit=limit)
            if not page.data:
                return after
            for event in page.data:
                if self.wanted(event):
                    await self.deliver(event)
            after = page.next_after

    def wanted(self, event: Envelope) -> bool:
        """Whether the routing keys match the event's, as the exchange decides."""
        key = broker.routing_key(event)
        return any(topic_matches(pattern, key) for pattern in self.routing_keys)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume the queue, one message at a time in queue order, until `stop`."""
        assert self._queue is not None, "use `async with Subscriber(...)`"
        inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        tag = await self._queue.consume(inbox.put)
        try:
            while not stop.is_set():
                try:  # not wait_for: under 3.11 it can swallow a cancellation
                    async with asyncio.timeout(0.5):
                        message = await inbox.get()
                except TimeoutError:
                    continue
                await self._on_message(message)
        finally:
            await self._queue.cancel(tag)
            while not inbox.empty():
                await inbox.get_nowait().nack(requeue=True)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = _envelope.decode(message.body)
        except msgspec.DecodeError as error:  # ValidationError is a DecodeError
            log.error(
                "rejecting message %s: not an event: %s", message.message_id, error
            )
            await message.reject(requeue=False)
            return
        try:
            await self.deliver(event)
        except Exception:  # the consumer's edge: log the event, give it back
            log.exception("handler failed on event %s; requeued", event.event_id)
            await asyncio.sleep(self.requeue_pause_s)
            await message.nack(requeue=True)
            return
        await message.ack()
