"""The relay publishes at least once: a crash between publish and cursor update
republishes, and the projections still apply every event once."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from projections.balances.projector import projection as balances
from projections.runner import apply_batch
from projections.statements.projector import projection as statements
from services.command_api.appender import Appender
from services.outbox_relay.relay import publish_events_next
from shared import events as e
from shared.bus import broker
from shared.store.event_store import Cursor, load_cursor, load_stream, save_cursor
from tests.integration.scenarios import (
    create_client,
    head_cursor,
    id_of,
    submit,
    transaction,
    wait_until,
)
from tests.support.environment import Environment


async def take(queue: AbstractQueue, count: int) -> list[AbstractIncomingMessage]:
    """Exactly `count` messages from the queue (acked), waiting on a deadline."""
    messages: list[AbstractIncomingMessage] = []

    async def received_all() -> bool:
        while len(messages) < count:
            message = await queue.get(fail=False)
            if message is None:
                return False
            await message.ack()
            messages.append(message)
        return True

    await wait_until(received_all, f"{count} messages on {queue.name}")
    assert await queue.get(fail=False) is None, "no more messages than expected"
    return messages


@pytest.fixture
async def channel(isolated: Environment) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(isolated.settings.amqp_url)
    try:
        yield await connection.channel(publisher_confirms=True)
    finally:
        await connection.close()


async def _client_with_four_postings(
    appender: Appender, pool: asyncpg.Pool, business_id: int
) -> tuple[int, list[e.Envelope]]:
    """A new client with debits of 123.45, 0.55 and 1,000.00 and a credit of 20.00:
    its id and its five stored events, once they are readable."""
    client_id = await create_client(appender, business_id)
    postings: list[tuple[int, e.EntryType]] = [
        (12_345, "debit"),
        (55, "debit"),
        (2_000, "credit"),
        (100_000, "debit"),
    ]
    for amount_minor, entry_type in postings:
        command = transaction(business_id, client_id, amount_minor, entry_type)
        await submit(appender, command)
    stream = await load_stream(pool, e.client_stream(client_id))
    return client_id, stream


async def _publish_crash_and_publish_again(
    conn: asyncpg.Connection,
    database_url: str,
    exchange: aio_pika.abc.AbstractExchange,
    relay: str,
    saved: Cursor,
) -> None:
    """On `conn`, publish the five events from the saved cursor, then "crash" (close
    it) before save_cursor; run again from the saved cursor on a new connection,
    which publishes the same five, saves the cursor, and then finds nothing more."""
    published, count = await publish_events_next(
        exchange, conn, await load_cursor(conn, relay), 100
    )
    assert count == 5
    await conn.close()  # the crash: the process dies before save_cursor
    conn = await asyncpg.connect(database_url)
    try:
        assert await load_cursor(conn, relay) == saved
        republished, count = await publish_events_next(exchange, conn, saved, 100)
        assert (republished, count) == (published, 5)
        await save_cursor(conn, relay, republished)
        assert await publish_events_next(
            exchange, conn, await load_cursor(conn, relay), 100
        ) == (
            republished,
            0,
        )
    finally:
        await conn.close()


async def _assert_projected_once_and_exact(pool: asyncpg.Pool, client_id: int) -> None:
    row = await pool.fetchrow(
        "SELECT debit_minor, credit_minor, version FROM rm_clients"
        " WHERE client_id = $1",
        client_id,
    )
    assert (row["debit_minor"], row["credit_minor"], row["version"]) == (
        112_400,
        2_000,
        5,
    )
    lines = await pool.fetch(
        "SELECT entry_type, amount_minor FROM rm_transactions WHERE client_id = $1"
        " ORDER BY position",
        client_id,
    )
    assert [(line["entry_type"], line["amount_minor"]) for line in lines] == [
        ("debit", 12_345),
        ("debit", 55),
        ("credit", 2_000),
        ("debit", 100_000),
    ]


async def test_a_relay_crash_before_its_cursor_update_republishes_and_projects_once(
    isolated: Environment,
    isolated_pool: asyncpg.Pool,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
    channel: aio_pika.abc.AbstractChannel,
) -> None:
    """A relay publishes a client's five events with confirms and "crashes" before
    save_cursor; run again from its saved cursor it publishes the same five, so a test
    queue receives each message_id twice, in stream order both times; applying both
    deliveries with apply_batch projects each event once and the balances are exact."""
    settings = isolated.settings
    business_id = id_of(isolated_business)
    relay = f"crash-test-{uuid.uuid4().hex[:8]}"
    exchange = await broker.declare_exchange(channel, settings.exchange)
    queue = await channel.declare_queue(
        f"test.{relay}", exclusive=True, auto_delete=True
    )
    await queue.bind(exchange, routing_key=f"{business_id}.#")
    conn = await asyncpg.connect(settings.database_url)
    saved = await head_cursor(conn)
    await save_cursor(conn, relay, saved)
    client_id, stream = await _client_with_four_postings(
        isolated_appender, isolated_pool, business_id
    )

    await _publish_crash_and_publish_again(
        conn, settings.database_url, exchange, relay, saved
    )

    messages = await take(queue, 10)
    event_ids = [str(event.event_id) for event in stream]
    assert Counter(message.message_id for message in messages) == Counter(event_ids * 2)
    assert [message.message_id for message in messages] == event_ids * 2
    deliveries = [broker.envelope_decoder.decode(message.body) for message in messages]
    assert deliveries == stream * 2
    for projection in (balances, statements):
        assert await apply_batch(isolated_pool, projection, deliveries[:5]) == 5
        assert await apply_batch(isolated_pool, projection, deliveries[5:]) == 0
    await _assert_projected_once_and_exact(isolated_pool, client_id)
