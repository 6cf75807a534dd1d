"""The relay's two lanes: an installation upgraded from the one-lane relay starts its
frames lane where the one cursor stood, so the projectors get neither a gap nor the
whole history again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest

from projections.registry import PROJECTIONS
from services.cli.businesses import provision_business
from services.cli.main import wire_relay
from shared.bus import broker
from shared.store.postgres import create_pool
from shared.worker.loop import run_until_stopped
from tests.integration.scenarios import id_of, wait_until
from tests.support.environment import Environment, create_environment, drop_environment


@pytest.fixture
async def fresh(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    env = await create_environment(*servers, tag="lanes")
    yield env
    await drop_environment(env)


async def _frames_cursor(pool: asyncpg.Pool) -> int | None:
    cursor: int | None = await pool.fetchval(
        "SELECT position FROM relay_cursor WHERE relay = 'frames'"
    )
    return cursor


async def _frames_in_queues(env: Environment) -> dict[str, list[list[int]]]:
    """Each projection queue's frames, as the positions of their events (taken)."""
    connection = await aio_pika.connect(env.settings.amqp_url)
    found: dict[str, list[list[int]]] = {}
    try:
        channel = await connection.channel()
        for projection in PROJECTIONS:
            queue = await channel.declare_queue(
                env.settings.queue_prefix + projection, passive=True
            )
            found[projection] = []
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                assert message.type == broker.FRAME_TYPE
                events = broker.frame_decoder.decode(message.body)
                found[projection].append([event.position for event in events])
    finally:
        await connection.close()
    return found


async def test_the_frames_lane_starts_where_the_one_lane_cursor_stood(
    fresh: Environment,
) -> None:
    """Proves the upgrade, with two businesses provisioned (two category.created
    events) and the one-lane cursor `main` saved at the first: the relay, run once,
    sends each projection queue exactly one frame, holding only the second event,
    and saves the frames cursor at it."""
    settings = fresh.settings
    first = await provision_business(settings, f"One {uuid.uuid4().hex[:8]}")
    second = await provision_business(settings, f"Two {uuid.uuid4().hex[:8]}")
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        positions = [
            await pool.fetchval(
                "SELECT position FROM events WHERE business_id = $1", id_of(business)
            )
            for business in (first, second)
        ]
        await pool.execute(
            "INSERT INTO relay_cursor (relay, position) VALUES ('main', $1)",
            positions[0],
        )
        stop = asyncio.Event()
        relay = asyncio.ensure_future(run_until_stopped(wire_relay(settings).run, stop))
        try:

            async def framed() -> bool:
                return await _frames_cursor(pool) == positions[1]

            await wait_until(framed, "the frames lane to pass the second event")
        finally:
            stop.set()
            await relay
    finally:
        await pool.close()
    assert await _frames_in_queues(fresh) == {
        projection: [[positions[1]]] for projection in PROJECTIONS
    }
