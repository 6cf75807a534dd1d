"""Balance monitors end to end: created over the real HTTP API, decided by the real
monitor process's work on the real PostgreSQL, the crossings read back from the
store (and from RabbitMQ) with their exact figures and positions."""

from __future__ import annotations

import asyncio

import aio_pika
import asyncpg
import msgspec
import pytest

from services.cli.workers import replay_monitor
from services.monitor.follower import MONITOR_LOCK
from shared.config import Settings
from tests.e2e.deadlines import wait_until
from tests.integration.monitor_calls import (
    Trigger,
    balance_monitor,
    monitored_to,
    new_monitor,
    post,
    triggers,
)
from tests.integration.reversal_calls import (
    Service,
    business_headers,
    new_client,
    post_json,
)
from tests.support.environment import Environment
from tests.support.service import monitoring


async def test_a_monitor_fires_once_per_crossing_and_rearms_when_it_crosses_back(
    service: Service, pool: asyncpg.Pool, environment: Environment, business: dict
) -> None:
    """Five postings move a balance 0 → 60 → 110 → 120 → 90 → 110 around a line at
    100.00: it fires at the second (crossing up), not at the third (still past),
    re-arms at the fourth (back under) and fires again at the fifth."""
    headers = business_headers(business)
    client = await new_client(service, headers)
    monitor = await balance_monitor(service, headers, client, ">=", 100)
    async with monitoring(environment.settings):
        positions = [
            await post(service, headers, client, "transactions", entry, amount)
            for entry, amount in (
                ("debit", "60.00"),
                ("debit", "50.00"),
                ("debit", "10.00"),
                ("credit", "30.00"),
                ("debit", "20.00"),
            )
        ]
        await monitored_to(pool, positions[-1])
    assert await triggers(pool, monitor) == [
        Trigger(client, 11_000, positions[1]),
        Trigger(client, 11_000, positions[4]),
    ]


async def test_at_creation_each_client_keeps_its_side_and_only_later_crossings_fire(
    service: Service, pool: asyncpg.Pool, environment: Environment, business: dict
) -> None:
    """A business-wide monitor created while one client is already past its line
    does not fire for it, nor at its next posting past the line; a client below the
    line fires when it crosses, and the first fires once it has come back under and
    crossed again."""
    headers = business_headers(business)
    owing, clear = (
        await new_client(service, headers),
        await new_client(service, headers),
    )
    async with monitoring(environment.settings):
        await post(service, headers, owing, "transactions", "debit", "150.00")
        monitor = await new_monitor(
            service,
            headers,
            scope="business",
            figure="balance",
            condition=">=",
            amount="100.00",
        )
        await post(service, headers, owing, "transactions", "debit", "5.00")
        crossed = await post(service, headers, clear, "transactions", "debit", "100")
        await post(service, headers, owing, "transactions", "credit", "100.00")
        again = await post(service, headers, owing, "transactions", "debit", "45.00")
        await monitored_to(pool, again)
    assert await triggers(pool, monitor) == [
        Trigger(clear, 10_000, crossed),
        Trigger(owing, 10_000, again),
    ]


async def test_a_category_monitor_watches_only_its_category_and_deposits_go_down(
    service: Service, pool: asyncpg.Pool, environment: Environment, business: dict
) -> None:
    """A category monitor on `deposit <= 20.00`: of two clients whose deposits fall
    from 50.00 to 10.00, only the one in the category fires."""
    headers = business_headers(business)
    status, category = await post_json(
        service, "/api/v3/clients/category", {"name": "Watched"}, headers
    )
    assert status == 201, category
    status, inside = await post_json(
        service,
        "/api/v3/clients",
        {"business_name": "Inside Ltd", "category_id": category["id"]},
        headers,
    )
    assert status == 201, inside
    outside = await new_client(service, headers)
    async with monitoring(environment.settings):
        for client in (inside["id"], outside):
            await post(service, headers, client, "deposits", "debit", "50.00")
        monitor = await new_monitor(
            service,
            headers,
            scope="category",
            category_id=category["id"],
            figure="deposit",
            condition="<=",
            amount="20.00",
        )
        await post(service, headers, outside, "deposits", "credit", "40.00")
        fell = await post(service, headers, inside["id"], "deposits", "credit", "40.00")
        await monitored_to(pool, fell)
    assert await triggers(pool, monitor) == [Trigger(inside["id"], 1_000, fell)]


async def test_a_replay_decides_every_crossing_again_and_records_none_twice(
    service: Service, pool: asyncpg.Pool, environment: Environment, business: dict
) -> None:
    """After two recorded crossings, `ledger monitor --replay`'s start forgets the
    state (cursor 0, no figures) and the process decides every event again from the
    first: the same two triggers, no third."""
    headers = business_headers(business)
    client = await new_client(service, headers)
    monitor = await balance_monitor(service, headers, client, ">=", "1.00")
    async with monitoring(environment.settings):
        first = await post(service, headers, client, "transactions", "debit", "1")
        await post(service, headers, client, "transactions", "credit", "1")
        second = await post(service, headers, client, "transactions", "debit", "2")
        await monitored_to(pool, second)
    recorded = [Trigger(client, 100, first), Trigger(client, 200, second)]
    assert await triggers(pool, monitor) == recorded
    await replay_monitor(environment.settings)  # --replay's first step
    assert (
        await pool.fetchval(
            "SELECT position FROM relay_cursor WHERE relay = 'monitors'"
        )
        == 0
    )
    assert await pool.fetchval("SELECT count(*) FROM monitor_figures") == 0
    async with monitoring(environment.settings):
        await monitored_to(pool, second)
    assert await triggers(pool, monitor) == recorded


async def test_the_state_is_not_reset_while_a_monitor_process_runs(
    environment: Environment, pool: asyncpg.Pool
) -> None:
    """`ledger monitor --replay`'s first step exits 1 while another session holds
    the monitor's lock: the running process's state is never pulled from under it."""
    async with monitoring(environment.settings):

        async def locked() -> bool:
            return bool(
                await pool.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND objid = $1 AND granted AND database ="
                    " (SELECT oid FROM pg_database WHERE datname = current_database())",
                    MONITOR_LOCK,
                )
            )

        await wait_until(locked, 30, "the monitor holds its lock")
        with pytest.raises(SystemExit) as refused:
            await replay_monitor(environment.settings)
        assert refused.value.code == 1


async def test_a_crossing_is_published_on_rabbitmq(
    service: Service, pool: asyncpg.Pool, environment: Environment, business: dict
) -> None:
    """A queue bound to the business's monitor.triggered routing key receives the
    crossing as the relay publishes it: the envelope with the exact payload."""
    settings: Settings = environment.settings
    headers = business_headers(business)
    client = await new_client(service, headers)
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(settings.exchange)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, f"{business['business_id']}.monitor.triggered")
        monitor = await balance_monitor(service, headers, client, ">=", "0.01")
        async with monitoring(environment.settings):
            crossed = await post(service, headers, client, "transactions", "debit", "5")
            message = await _one_message(queue)
    envelope = msgspec.json.decode(message.body)
    assert envelope["type"] == "monitor.triggered"
    assert envelope["stream_id"] == f"monitor-{monitor}"
    assert envelope["payload"] == {
        "type": "monitor.triggered",
        "monitor_id": monitor,
        "client_id": client,
        "figure": "balance",
        "condition": ">=",
        "threshold_minor": 1,
        "value_minor": 500,
        "position": crossed,
    }


async def _one_message(
    queue: aio_pika.abc.AbstractQueue,
) -> aio_pika.abc.AbstractIncomingMessage:
    async with asyncio.timeout(30):
        async with queue.iterator() as messages:
            async for message in messages:
                await message.ack()
                return message
    raise AssertionError("no message")
