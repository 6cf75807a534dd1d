"""Projections apply each event once in effect, across restarts, redeliveries, gaps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest

from projections.balances.projector import projection as balances
from projections.registry import QUEUES
from projections.runner import apply_batch
from services.cli.workers import wire_projector
from services.command_api.appender import Appender
from shared import events as e
from shared.bus import broker
from shared.store.event_store import load_stream
from tests.integration.scenarios import (
    create_client,
    id_of,
    submit,
    transaction,
    wait_until,
)
from tests.support.environment import Environment


async def _client_with_postings(
    appender: Appender, business_id: int, postings: list[tuple[int, e.EntryType]]
) -> int:
    client_id = await create_client(appender, business_id)
    for amount_minor, entry_type in postings:
        await submit(
            appender, transaction(business_id, client_id, amount_minor, entry_type)
        )
    return client_id


async def _figures(pool: asyncpg.Pool, client_id: int) -> tuple[int, int, int]:
    row = await pool.fetchrow(
        "SELECT debit_minor, credit_minor, version FROM rm_clients"
        " WHERE client_id = $1",
        client_id,
    )
    return int(row["debit_minor"]), int(row["credit_minor"]), row["version"]


async def _tracked(pool: asyncpg.Pool, projection: str, stream_id: str) -> int | None:
    version: int | None = await pool.fetchval(
        "SELECT version FROM projection_tracking"
        " WHERE projection = $1 AND stream_id = $2",
        projection,
        stream_id,
    )
    return version


async def test_a_restarted_projection_skips_redelivered_events(
    isolated_pool: asyncpg.Pool,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
) -> None:
    """Events 1-3 of a client are applied; after a "restart" (a fresh apply_batch
    call) events 1-3 arrive again with 4-5: only 4 and 5 apply, and the balance is
    exactly 70.00 debit and 5.00 credit."""
    postings: list[tuple[int, e.EntryType]] = [
        (1_000, "debit"),
        (2_000, "debit"),
        (500, "credit"),
        (4_000, "debit"),
    ]
    client_id = await _client_with_postings(
        isolated_appender, id_of(isolated_business), postings
    )
    stream = await load_stream(isolated_pool, e.client_stream(client_id))
    assert [event.version for event in stream] == [1, 2, 3, 4, 5]

    assert await apply_batch(isolated_pool, balances, stream[:3]) == 3
    assert await _figures(isolated_pool, client_id) == (3_000, 0, 3)
    assert await apply_batch(isolated_pool, balances, stream[:3] + stream[3:]) == 2
    assert await apply_batch(isolated_pool, balances, stream) == 0

    assert await _figures(isolated_pool, client_id) == (7_000, 500, 5)
    assert await _tracked(isolated_pool, "balances", e.client_stream(client_id)) == 5


async def test_a_gap_in_deliveries_is_filled_from_the_event_store(
    isolated_pool: asyncpg.Pool,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
) -> None:
    """With version 1 applied, version 3 arrives first: version 2 is read from the
    store and applied before it (two applied); the late version 2 is then a duplicate
    and version 4 applies alone, so the balance is exactly 1.00 + 2.00 + 4.00."""
    postings: list[tuple[int, e.EntryType]] = [
        (100, "debit"),
        (200, "debit"),
        (400, "debit"),
    ]
    client_id = await _client_with_postings(
        isolated_appender, id_of(isolated_business), postings
    )
    created, second, third, fourth = await load_stream(
        isolated_pool, e.client_stream(client_id)
    )

    assert await apply_batch(isolated_pool, balances, [created]) == 1
    assert await apply_batch(isolated_pool, balances, [third]) == 2
    assert await _figures(isolated_pool, client_id) == (300, 0, 3)
    assert await apply_batch(isolated_pool, balances, [second]) == 0
    assert await apply_batch(isolated_pool, balances, [fourth]) == 1

    assert await _figures(isolated_pool, client_id) == (700, 0, 4)


@pytest.fixture
async def exchange(
    isolated: Environment,
) -> AsyncIterator[aio_pika.abc.AbstractExchange]:
    """The isolated frames exchange with the projector's queue already declared, so
    nothing published before the projector starts is lost."""
    connection = await aio_pika.connect(isolated.settings.amqp_url)
    try:
        channel = await connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        exchange = await broker.declare_exchange(channel, isolated.settings.exchange)
        settings = isolated.settings
        [queue] = await broker.declare_projection_queues(
            channel, exchange, settings.queue_prefix, QUEUES, 1
        )
        await queue.purge()
        yield await broker.declare_frames_exchange(channel, exchange)
    finally:
        await connection.close()


async def test_a_restarted_projector_resumes_without_double_counting(
    isolated: Environment,
    isolated_pool: asyncpg.Pool,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
    exchange: aio_pika.abc.AbstractExchange,
) -> None:
    """A running Projector (of balances) consumes events 1-3 from RabbitMQ, stopped;
    the relay then "republishes" 1-3 with the new 4-5, and a new Projector applies only
    4 and 5: the balance is exactly 70.00 debit, 5.00 credit, and the queue drains."""
    postings: list[tuple[int, e.EntryType]] = [(1_000, "debit"), (2_000, "debit")]
    business_id = id_of(isolated_business)
    client_id = await _client_with_postings(isolated_appender, business_id, postings)
    stream_id = e.client_stream(client_id)

    async def run_projector_until(version: int, events: list[e.Envelope]) -> None:
        stop = asyncio.Event()
        task = asyncio.ensure_future(
            wire_projector(isolated.settings, [balances]).run(stop)
        )
        try:
            bodies = [broker.envelope_body(event) for event in events]
            await broker.publish_frames(
                exchange, events, bodies, events[-1].position, 1
            )

            async def applied() -> bool:
                return (
                    await _tracked(isolated_pool, balances.name, stream_id) == version
                )

            await wait_until(applied, f"the projector to apply version {version}")
        finally:
            stop.set()
            await task

    first_run = await load_stream(isolated_pool, stream_id)
    await run_projector_until(3, first_run)
    assert await _figures(isolated_pool, client_id) == (3_000, 0, 3)
    await submit(isolated_appender, transaction(business_id, client_id, 500, "credit"))
    await submit(isolated_appender, transaction(business_id, client_id, 4_000))
    stream = await load_stream(isolated_pool, stream_id)
    await run_projector_until(5, first_run + stream[3:])

    assert await _figures(isolated_pool, client_id) == (7_000, 500, 5)
    connection = await aio_pika.connect(isolated.settings.amqp_url)
    try:
        channel = await connection.channel()
        queue_name = isolated.settings.queue_prefix + QUEUES

        async def drained() -> bool:
            queue = await channel.declare_queue(queue_name, passive=True)
            return queue.declaration_result.message_count == 0

        await wait_until(drained, "the projector's queue to drain")
    finally:
        await connection.close()
