"""The webhook worker's queue: one durable queue on the subscribers' topic exchange,
bound `<business_id>.#` for each business that has a webhook endpoint, and only those.

A queue bound `#` would take every event of every business, and the broker would then
store and deliver a message per posting whether or not anyone wants it: `make bench`'s
CPU per posting. Bound per business, an event of a business without endpoints is
dropped by the exchange at no cost. The API binds a business's key when it creates
the business's first endpoint, before it answers (declare and bind are idempotent, so
every creation binds again); the worker binds every business with endpoints when it
starts, which repairs a queue deleted by hand.

The queue has a single active consumer, like the projectors' (shared/bus/broker.py):
the broker feeds one worker at a time and hands its unacked messages to the next in
their order, so the worker writes each business's deliveries in the relay's order.
"""

from __future__ import annotations

from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from shared.bus import broker
from shared.bus.queue_types import queue_arguments, typed_name


def queue_name(exchange: str, queue_type: str = "classic") -> str:
    """The webhook worker's queue of the type (LEDGER_QUEUE_TYPE), named after the
    exchange it is bound to (a test session's exchange has a unique name, and so has
    its queue); shared/bus/queue_types.py names each type's apart."""
    return typed_name(f"{exchange}.webhooks", queue_type)


def business_key(business_id: int) -> str:
    """The routing keys of every event of the business (`<business_id>.<type>`)."""
    return f"{business_id}.#"


async def declare(
    channel: AbstractChannel, exchange_name: str, queue_type: str = "classic"
) -> tuple[AbstractExchange, AbstractQueue]:
    """The subscribers' exchange and the webhook queue of the type (both durable,
    idempotent)."""
    exchange = await broker.declare_exchange(channel, exchange_name)
    queue = await channel.declare_queue(
        queue_name(exchange_name, queue_type),
        durable=True,
        arguments=queue_arguments(queue_type),
    )
    return exchange, queue


async def bind_business(
    channel: AbstractChannel,
    exchange_name: str,
    business_id: int,
    queue_type: str = "classic",
) -> None:
    """Make the queue of the type take every event of the business from now on."""
    exchange, queue = await declare(channel, exchange_name, queue_type)
    await queue.bind(exchange, routing_key=business_key(business_id))
