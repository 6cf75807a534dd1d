"""Upgrading from a projector per projection (projections/legacy_queues.py): the
frames an earlier version left in its per-projection queues are applied before
anything newer, to their projection, and the old queues are deleted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import asyncpg
import msgspec
import pytest
from aio_pika.abc import AbstractExchange as Exchange

from projections.registry import PROJECTIONS, QUEUES
from services.cli.businesses import provision_business
from services.cli.workers import wire_projector
from services.command_api.appender import Appender
from shared import events as e
from shared.bus import broker
from shared.config import Settings
from shared.store.event_rows import SELECT_EVENTS, envelope_from_row
from shared.store.postgres import create_pool
from tests.integration.scenarios import (
    create_client,
    id_of,
    submit,
    transaction,
    wait_until,
)
from tests.support.environment import create_environment, drop_environment


class Upgrade(msgspec.Struct):
    """An environment of its own (no queue of it exists before the test runs), one
    business, a pool, a started Appender and a broker connection."""

    settings: Settings
    business_id: int
    pool: asyncpg.Pool
    appender: Appender
    connection: aio_pika.abc.AbstractConnection


@pytest.fixture
async def upgrade(servers: tuple[str, str]) -> AsyncIterator[Upgrade]:
    env = await create_environment(*servers, tag="upgrade")
    settings = env.settings
    business = await provision_business(settings, f"Up {uuid.uuid4().hex[:8]}")
    pool = await create_pool(settings.database_url, max_size=4)
    appender = Appender(pool, settings.hmac_key.encode(), 500)
    appender.start()
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        yield Upgrade(settings, id_of(business), pool, appender, connection)
    finally:
        await connection.close()
        await appender.stop()
        await pool.close()
        await drop_environment(env)


async def _publish(
    frames: aio_pika.abc.AbstractExchange, events: list[e.Envelope]
) -> None:
    bodies = [broker.envelope_body(event) for event in events]
    await broker.publish_frames(frames, events, bodies, events[-1].position, 1)


async def _exists(connection: aio_pika.abc.AbstractConnection, name: str) -> bool:
    channel = await connection.channel()
    try:
        await channel.declare_queue(name, passive=True)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return False
    await channel.close()
    return True


async def _earlier_queues(
    settings: Settings, channel: aio_pika.abc.AbstractChannel
) -> tuple[list[str], Exchange, Exchange]:
    """The per-projection queues as the earlier version declared them, the topic
    exchange and the frames exchange."""
    exchange = await broker.declare_exchange(channel, settings.exchange)
    frames = await broker.declare_frames_exchange(channel, exchange)
    names = [settings.queue_prefix + name for name in PROJECTIONS]
    for name in names:
        queue = await channel.declare_queue(
            name, durable=True, arguments={"x-single-active-consumer": True}
        )
        await queue.bind(frames, routing_key="0")
    return names, exchange, frames


async def _events(pool: asyncpg.Pool, sql: str, key: object) -> list[e.Envelope]:
    rows = await pool.fetch(SELECT_EVENTS + sql + " ORDER BY position", key)
    return [envelope_from_row(row) for row in rows]


async def _tracked_versions(pool: asyncpg.Pool, stream_id: str) -> list[int]:
    rows = await pool.fetch(
        "SELECT version FROM projection_tracking WHERE stream_id = $1", stream_id
    )
    return [row["version"] for row in rows]


async def _read_models(pool: asyncpg.Pool, client_id: int, category_id: int) -> tuple:
    """(debit, credit, version) of the client, its category's customer count, and
    its statement lines."""
    figures = await pool.fetchrow(
        "SELECT debit_minor, credit_minor, version FROM rm_clients"
        " WHERE client_id = $1",
        client_id,
    )
    counted = await pool.fetchval(
        "SELECT customer_count FROM rm_categories WHERE category_id = $1", category_id
    )
    lines = await pool.fetchval(
        "SELECT count(*) FROM rm_transactions WHERE client_id = $1", client_id
    )
    return tuple(figures), counted, lines


@asynccontextmanager
async def _projector(settings: Settings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    projector = asyncio.ensure_future(wire_projector(settings).run(stop))
    try:
        yield
    finally:
        stop.set()
        await projector


async def test_an_earlier_versions_queues_are_applied_first_then_deleted(
    upgrade: Upgrade,
) -> None:
    """An earlier version's balances and statements queues hold the business's
    category.created alone; client.created and a debit of 10.00 then reach them and
    the new queue. The projector applies the old queues first (the category counts
    its client: applied after client.created it would count none), deletes them,
    skips the new queue's copies, and applies a later credit from the new queue:
    10.00 / 3.00 at version 3, two statement lines, both tracked at 3."""
    settings, business_id, pool = upgrade.settings, upgrade.business_id, upgrade.pool
    appender, connection = upgrade.appender, upgrade.connection
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    earlier, exchange, frames = await _earlier_queues(settings, channel)
    client_id = await create_client(appender, business_id)
    stream = e.client_stream(client_id)
    await submit(appender, transaction(business_id, client_id, 1_000))
    category, *later = await _events(pool, "WHERE business_id = $1", business_id)
    assert isinstance(category.payload, e.CategoryCreated)
    assert [event.type for event in later] == [
        "client.created",
        "transaction.posted",
    ]
    await _publish(frames, [category])  # the old queues alone
    await broker.declare_projection_queues(
        channel, exchange, settings.queue_prefix, QUEUES, 1
    )
    await _publish(frames, later)  # the old queues and the new one

    async def gone() -> bool:
        return not any([await _exists(connection, name) for name in earlier])

    async def applied() -> bool:
        return await _tracked_versions(pool, stream) == [3, 3]

    async with _projector(settings):
        await wait_until(gone, "the old queues to be deleted")
        await submit(appender, transaction(business_id, client_id, 300, "credit"))
        await _publish(frames, await _events(pool, "WHERE stream_id = $1", stream))
        await wait_until(applied, "both projections at version 3")
    category_id = category.payload.category_id
    assert await _read_models(pool, client_id, category_id) == (
        (1_000, 300, 3),
        1,
        2,
    )
    queue = await channel.declare_queue(settings.queue_prefix + QUEUES, passive=True)
    assert queue.declaration_result.message_count == 0


async def test_an_old_queue_declared_again_while_a_projector_runs_is_only_deleted(
    upgrade: Upgrade,
) -> None:
    """While a projector consumes the new queue (so it drained the old ones first),
    an earlier relay declares an old queue again: what reaches it from then on also
    reaches the new queue. A second projector starting then deletes it without
    applying it. Seen with a frame sent to the old queue alone (the default exchange),
    of a client no queue else has: its tracking row never appears."""
    settings, business_id, pool = upgrade.settings, upgrade.business_id, upgrade.pool
    appender, connection = upgrade.appender, upgrade.connection
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    new_queue = settings.queue_prefix + QUEUES

    async def consumed() -> bool:
        probe = await connection.channel()
        try:
            queue = await probe.declare_queue(new_queue, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False  # not declared yet
        await probe.close()
        return queue.declaration_result.consumer_count == 1

    async def gone() -> bool:
        return not await _exists(connection, settings.queue_prefix + "balances")

    client_id = await create_client(appender, business_id)
    stream = e.client_stream(client_id)
    [created] = await _events(pool, "WHERE stream_id = $1", stream)
    async with _projector(settings):
        await wait_until(consumed, "the first projector on the new queue")
        [old, *_], _, _ = await _earlier_queues(settings, channel)
        [body] = broker.frame_bodies([created], [broker.envelope_body(created)], 1)
        await channel.default_exchange.publish(
            aio_pika.Message(body, type=broker.FRAME_TYPE), routing_key=old
        )
        async with _projector(settings):
            await wait_until(gone, "the old balances queue to be deleted")
    assert await _tracked_versions(pool, stream) == []
