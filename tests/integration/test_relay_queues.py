"""Nothing the relay sends the projectors is dropped as unroutable: it declares the
projectors' queue itself before publishing, so events published before any projector
has ever started wait in the queues, and a frame no queue takes fails its batch, which
the relay publishes again once the queues are declared again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest

from projections.registry import PROJECTIONS, QUEUES
from services.cli.businesses import provision_business
from services.cli.workers import wire_relay
from services.command_api.appender import Appender
from shared import events as e
from shared.bus import broker
from shared.bus.queue_types import typed_name
from shared.config import Settings
from shared.response_bodies import timestamp
from shared.setting_checks import QUEUE_TYPES
from shared.store.postgres import create_pool
from shared.worker.loop import run_until_stopped
from tests.integration.scenarios import create_client, id_of, wait_until
from tests.support.environment import Environment, create_environment, drop_environment
from tests.support.service import http_client, workers


@pytest.fixture
async def fresh(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    """An environment of its own: no queue of it exists before the test runs."""
    env = await create_environment(*servers, tag="queues")
    yield env
    await drop_environment(env)


@pytest.fixture(params=QUEUE_TYPES)
async def fresh_typed(
    servers: tuple[str, str], request: pytest.FixtureRequest
) -> AsyncIterator[Environment]:
    """`fresh`, with the projectors' queues of each type in turn (LEDGER_QUEUE_TYPE):
    on one node, quorum queues prove the code path, not replication."""
    env = await create_environment(*servers, tag="queues", queue_type=request.param)
    yield env
    await drop_environment(env)


def _queue_name(settings: Settings) -> str:
    return typed_name(settings.queue_prefix + QUEUES, settings.queue_type)


async def _queued(env: Environment) -> int:
    """The projectors' queue's message count (a missing queue fails the test)."""
    connection = await aio_pika.connect(env.settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(_queue_name(env.settings), passive=True)
        return int(queue.declaration_result.message_count)
    finally:
        await connection.close()


async def _relayed_past(pool: asyncpg.Pool, position: int) -> bool:
    """Whether the relay's saved cursor is at or past the event at `position`."""
    cursor: int | None = await pool.fetchval(
        "SELECT position FROM relay_cursor WHERE relay = 'main'"
    )
    return cursor is not None and cursor >= position


async def _relay_alone_until_past(
    settings: Settings, pool: asyncpg.Pool, position: int
) -> None:
    """Run only the Relay until its saved cursor passes `position`, then stop it."""
    stop = asyncio.Event()
    relay = asyncio.ensure_future(run_until_stopped(wire_relay(settings).run, stop))
    try:
        await wait_until(
            lambda: _relayed_past(pool, position),
            "the relay's cursor to pass category.created",
        )
    finally:
        stop.set()
        await relay


async def _delete_projection_queues(settings: Settings) -> None:
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        await channel.queue_delete(_queue_name(settings))
    finally:
        await connection.close()


async def _first_message(
    settings: Settings,
) -> aio_pika.abc.AbstractIncomingMessage:
    """The projectors' queue's first message, put back (nacked with requeue)."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(_queue_name(settings), passive=True)
        # A consumer, not basic.get: a quorum queue with single-active-consumer
        # refuses basic.get.
        async with queue.iterator() as messages:
            message = await anext(messages)
            await message.nack(requeue=True)
    finally:
        await connection.close()
    return message


async def test_events_relayed_before_any_projector_starts_reach_the_read_models(
    fresh_typed: Environment,
) -> None:
    """Proves the relay's first publishes wait in the projectors' queue, by
    provisioning a business (its "Uncategorised" category.created event), running only
    the Relay until its cursor is past that event, checking the queue holds it, then
    starting the projector: the category is listed by GET /clients/categories."""
    settings = fresh_typed.settings
    business = await provision_business(settings, f"Early {uuid.uuid4().hex[:8]}")
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        [event] = await pool.fetch(
            "SELECT position, payload->>'category_id' AS category_id, recorded_at"
            " FROM events WHERE business_id = $1",
            id_of(business),
        )

        await _relay_alone_until_past(settings, pool, event["position"])
        assert await _queued(fresh_typed) == 1

        async def projected() -> bool:
            positions = await pool.fetch(
                "SELECT position_last FROM projection_checkpoint"
            )
            return [row["position_last"] for row in positions] == [
                event["position"]
            ] * len(PROJECTIONS)

        async with workers(settings), http_client(settings) as client:
            await wait_until(projected, "every projection to apply category.created")
            listed = await client.get(
                "/api/v3/clients/categories",
                headers={"Authorization": f"Bearer {business['api_key']}"},
            )
            assert listed.status == 200
            body = await listed.json()
        created_at = timestamp(event["recorded_at"])
        assert body == [
            {
                "id": int(event["category_id"]),
                "business_id": id_of(business),
                "name": "Uncategorised",
                "description": "",
                "created_at": created_at,
                "updated_at": created_at,
                "archived": False,
                "customer_count": 0,
            }
        ]
        assert await _queued(fresh_typed) == 0
    finally:
        await pool.close()


async def test_an_event_no_queue_takes_is_published_again_not_dropped(
    fresh_typed: Environment,
) -> None:
    """Proves a returned (unroutable) frame fails the relay's batch instead of being
    dropped, by deleting the projectors' queue under a running Relay and creating a
    client: the relay restarts, declares the queue again and republishes, so the
    queue holds exactly one frame, that client.created event, and the cursor is past
    it."""
    settings = fresh_typed.settings
    business = await provision_business(settings, f"Lost {uuid.uuid4().hex[:8]}")
    pool = await create_pool(settings.database_url, max_size=2)
    appender = Appender(pool, settings.hmac_key.encode(), 500)
    appender.start()
    stop = asyncio.Event()
    relay = asyncio.ensure_future(run_until_stopped(wire_relay(settings).run, stop))
    try:
        category_position: int = await pool.fetchval(
            "SELECT position FROM events WHERE business_id = $1", id_of(business)
        )
        await wait_until(
            lambda: _relayed_past(pool, category_position),
            "the relay to publish category.created",
        )
        await _delete_projection_queues(settings)

        client_id = await create_client(appender, id_of(business), "Unroutable")
        position: int = await pool.fetchval(
            "SELECT position FROM events WHERE stream_id = $1",
            e.client_stream(client_id),
        )

        async def queued_again() -> bool:
            try:
                return await _queued(fresh_typed) == 1
            except aio_pika.exceptions.ChannelNotFoundEntity:
                return False  # the relay has not declared it again yet

        await wait_until(queued_again, "the client.created event in the queue")
        await wait_until(
            lambda: _relayed_past(pool, position), "the cursor to pass client.created"
        )
    finally:
        stop.set()
        await relay
        await appender.stop()
        await pool.close()
    assert await _queued(fresh_typed) == 1
    message = await _first_message(settings)
    assert message.type == broker.FRAME_TYPE
    [event] = broker.frame_decoder.decode(message.body)
    assert (event.stream_id, event.position) == (e.client_stream(client_id), position)
    assert message.headers == {"business_slot": 0, "position": position}


async def test_a_queue_from_before_partitions_stops_the_relay_with_the_way_out(
    fresh: Environment,
) -> None:
    """The projectors' queue declared as earlier versions did theirs (no
    x-single-active-consumer) cannot be declared again with it: the relay's run fails
    with QueueArgumentsChanged naming the queue and the operations section, and
    publishes nothing."""
    settings = fresh.settings
    old_queue = settings.queue_prefix + QUEUES
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        await channel.declare_queue(old_queue, durable=True)
        relay = wire_relay(settings)
        with pytest.raises(broker.QueueArgumentsChanged) as refused:
            await relay.run(asyncio.Event())
        assert str(refused.value) == (
            f"queue {old_queue} was declared without x-single-active-consumer by an"
            " earlier version: stop the relay, let the projectors drain it, delete it"
            " (deploy/OPERATIONS.md, Running several processes), then start again"
        )
        assert relay.published == 0
    finally:
        await connection.close()
