"""The relay's frames lane: an installation upgraded from the one-lane relay starts it
where the one cursor stood (the projectors get neither a gap nor the whole history
again), and other businesses' events overtake a bulk transaction, each business still
in order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest

from projections.registry import QUEUES
from services.cli.businesses import provision_business
from services.cli.workers import wire_relay
from services.command_api.appender import Appender
from services.outbox_relay.frames import FramesLane
from shared import events as e
from shared.bus import broker
from shared.store.event_store import Cursor, append
from shared.store.postgres import create_pool
from shared.worker.loop import run_until_stopped
from tests.integration.scenarios import create_client, id_of, next_posting, wait_until
from tests.support.environment import Environment, create_environment, drop_environment

BULK = 250


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


async def _frames_in_queue(env: Environment) -> list[list[int]]:
    """The projectors' queue's frames, as the positions of their events (taken)."""
    connection = await aio_pika.connect(env.settings.amqp_url)
    found: list[list[int]] = []
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            env.settings.queue_prefix + QUEUES, passive=True
        )
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            assert message.type == broker.FRAME_TYPE
            events = broker.frame_decoder.decode(message.body)
            found.append([event.position for event in events])
    finally:
        await connection.close()
    return found


async def test_the_frames_lane_starts_where_the_one_lane_cursor_stood(
    fresh: Environment,
) -> None:
    """Proves the upgrade, with two businesses provisioned (two category.created
    events) and the one-lane cursor `main` saved at the first: the relay, run once,
    sends the projectors' queue exactly one frame, holding only the second event,
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
    assert await _frames_in_queue(fresh) == [[positions[1]]]


async def _bulk_then_other(
    env: Environment, pool: asyncpg.Pool, appender: Appender, first: int, other: int
) -> tuple[Cursor, list[e.Envelope], e.Envelope]:
    """BULK debits of business `first` committed in one transaction (one per new
    client), then one debit of business `other` committed after it; and the cursor
    just before them."""
    key = env.settings.hmac_key.encode()
    clients = [await create_client(appender, first) for _ in range(BULK)]
    postings = [
        await next_posting(pool, key, first, client_id, 100) for client_id in clients
    ]
    other_client = await create_client(appender, other)
    late = await next_posting(pool, key, other, other_client, 7)
    cursor = Cursor(await pool.fetchval("SELECT max(position) FROM events"))
    async with pool.acquire() as conn:
        async with conn.transaction():
            bulk = await append(conn, postings)
        async with conn.transaction():
            [stored] = await append(conn, [late])
    return cursor, bulk, stored


async def _frames_taken(
    queue: aio_pika.abc.AbstractQueue,
) -> list[tuple[list[int], int]]:
    """Every frame in the queue, as (its events' positions, its position header)."""
    taken = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        events = broker.frame_decoder.decode(message.body)
        taken.append(
            ([event.position for event in events], message.headers["position"])
        )
    return taken


async def _run_frames_lane(
    env: Environment, pool: asyncpg.Pool, cursor: Cursor, limit: int
) -> tuple[list[int], list[tuple[list[int], int]]]:
    """Run a FramesLane from `cursor` in batches of `limit` until it finds nothing:
    each step's count, and the frames a queue bound to partition 0 received."""
    connection = await aio_pika.connect(env.settings.amqp_url)
    try:
        channel = await connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        exchange = await broker.declare_exchange(channel, env.settings.exchange)
        frames = await broker.declare_frames_exchange(channel, exchange)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(frames, routing_key="0")
        lane = FramesLane(frames, 1)
        counts = []
        async with pool.acquire() as conn:
            while (step := await lane(conn, cursor, limit))[1]:
                cursor, count = step
                counts.append(count)
        return counts, await _frames_taken(queue)
    finally:
        await connection.close()


async def test_other_businesses_overtake_a_bulk_transaction_in_order(
    isolated: Environment,
    isolated_pool: asyncpg.Pool,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
) -> None:
    """Proves express frames, with 250 debits of one business committed in one
    transaction and then one debit of another business, relayed by the frames lane in
    batches of 100: the queue gets the first 100 bulk events, then the other
    business's debit (overtaking, its frame's position header still the cursor), then
    the other 150 bulk events in two frames, and never the overtaking one again."""
    first = id_of(isolated_business)
    other = id_of(await provision_business(isolated.settings, "Overtaking"))
    cursor, bulk, late = await _bulk_then_other(
        isolated, isolated_pool, isolated_appender, first, other
    )
    counts, taken = await _run_frames_lane(isolated, isolated_pool, cursor, 100)
    positions = [event.position for event in bulk]
    assert counts == [100, 100, 51]
    assert taken == [
        (positions[:100], positions[99]),
        ([late.position], positions[99]),
        (positions[100:200], positions[199]),
        (positions[200:], late.position),
    ]


async def test_a_business_held_back_by_its_bulk_is_not_overtaken_by_itself_later(
    isolated: Environment,
    isolated_pool: asyncpg.Pool,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
) -> None:
    """Proves per-business order across two bulk transactions: business 1 commits 10
    debits in one transaction, business 2 then 6 in another, then business 1, 3 and 1
    one debit each. Relayed 4 at a time, business 2's bulk and business 3 overtake
    business 1's bulk, and business 1's two late debits still come after its bulk, in
    their order: every event exactly once, each business's in position order."""
    ones, twos = (
        id_of(isolated_business),
        id_of(await provision_business(isolated.settings, "Second bulk")),
    )
    three = id_of(await provision_business(isolated.settings, "Third"))
    key = isolated.settings.hmac_key.encode()
    plan = [(ones, 10), (twos, 6), (ones, 1), (three, 1), (ones, 1)]
    clients = {
        b: [await create_client(isolated_appender, b) for _ in range(10)]
        for b in (ones, twos, three)
    }
    cursor = Cursor(await isolated_pool.fetchval("SELECT max(position) FROM events"))
    business_of: dict[int, int] = {}
    async with isolated_pool.acquire() as conn:
        for step, (business, count) in enumerate(plan):
            chosen = (
                clients[business][:count] if count > 1 else [clients[business][step]]
            )
            postings = [
                await next_posting(conn, key, business, client, 100)
                for client in chosen
            ]
            async with conn.transaction():
                stored = await append(conn, postings)
            business_of.update({event.position: business for event in stored})
    counts, taken = await _run_frames_lane(isolated, isolated_pool, cursor, 4)
    sent = [position for positions, _ in taken for position in positions]
    assert sorted(sent) == sorted(business_of)
    for business in (ones, twos, three):
        mine = [position for position in sent if business_of[position] == business]
        assert mine == sorted(mine), business
    assert sent != sorted(sent)  # something did overtake
    assert all(header <= max(business_of) for _, header in taken)
