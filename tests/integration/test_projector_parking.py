"""A projection event that keeps failing is parked with its error and acked, never
dropped; the other streams go on, and the parked event applies once its cause is gone.

Each test runs in an environment of its own (database, exchange, queues) with the real
Relay and a real Projector on RabbitMQ, so that what the queue and projection_parked
hold is exactly what these tests did."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aio_pika
import asyncpg
import pytest

from projections.balances.projector import apply as apply_balances
from projections.balances.projector import projection as balances
from projections.registry import QUEUES
from projections.runner import Projection, retry_parked
from projections.statements.projector import projection as statements
from services.cli.businesses import provision_business
from services.cli.workers import wire_projector, wire_relay
from services.command_api.appender import Appender
from shared import events as e
from shared.store.event_store import load_stream
from shared.store.postgres import create_pool
from shared.worker.loop import run_until_stopped
from tests.integration.scenarios import (
    create_client,
    id_of,
    submit,
    transaction,
    wait_until,
)
from tests.support.environment import Environment, create_environment, drop_environment


class Ledger:
    """A fresh environment with a pool, a started Appender and one business."""

    def __init__(
        self, env: Environment, pool: asyncpg.Pool, appender: Appender, business_id: int
    ) -> None:
        self.env = env
        self.pool = pool
        self.appender = appender
        self.business_id = business_id


@pytest.fixture
async def ledger(servers: tuple[str, str]) -> AsyncIterator[Ledger]:
    env = await create_environment(*servers, tag="park")
    try:
        pool = await create_pool(env.settings.database_url, max_size=5)
        appender = Appender(pool, env.settings.hmac_key.encode(), 500)
        appender.start()
        try:
            business = await provision_business(
                env.settings, f"Parking {uuid.uuid4().hex[:8]}"
            )
            yield Ledger(env, pool, appender, id_of(business))
        finally:
            await appender.stop()
            await pool.close()
    finally:
        await drop_environment(env)


def failing_for(stream_id: str) -> Projection:
    """The real balances projection, except that any batch holding an event of
    `stream_id` raises (a bug in the projection, say, that only this stream meets)."""

    async def apply(conn: asyncpg.Connection, events: Sequence[e.Envelope]) -> None:
        if any(event.stream_id == stream_id for event in events):
            raise RuntimeError(f"cannot apply {stream_id}")
        await apply_balances(conn, events)

    return Projection(balances.name, apply)


@asynccontextmanager
async def running(ledger: Ledger, projection: Projection) -> AsyncIterator[None]:
    """The real Relay and a Projector of `projection` and the real statements
    projection (two attempts, 10 ms apart), stopped when the block ends."""
    stop = asyncio.Event()
    projector = wire_projector(
        ledger.env.settings,
        [projection, statements],
        attempts_max=2,
        retry_delay_s=0.01,
    )
    tasks = [
        asyncio.ensure_future(
            run_until_stopped(wire_relay(ledger.env.settings).run, stop)
        ),
        asyncio.ensure_future(run_until_stopped(projector.run, stop)),
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def _client(ledger: Ledger, name: str, debit: int, credit: int) -> int:
    client_id = await create_client(ledger.appender, ledger.business_id, name)
    for amount_minor, entry_type in ((debit, "debit"), (credit, "credit")):
        command = transaction(ledger.business_id, client_id, amount_minor, entry_type)
        await submit(ledger.appender, command)
    return client_id


async def _parked(pool: asyncpg.Pool) -> list[tuple[object, ...]]:
    rows = await pool.fetch(
        "SELECT projection, event_id, stream_id, version, position, error"
        " FROM projection_parked ORDER BY position"
    )
    return [tuple(row.values()) for row in rows]


async def _figures(pool: asyncpg.Pool, client_id: int) -> tuple[int, int, int] | None:
    row = await pool.fetchrow(
        "SELECT debit_minor, credit_minor, version FROM rm_clients"
        " WHERE client_id = $1",
        client_id,
    )
    if row is None:
        return None
    return int(row["debit_minor"]), int(row["credit_minor"]), row["version"]


async def _tracked(
    pool: asyncpg.Pool, stream_id: str, projection: str = "balances"
) -> int | None:
    version: int | None = await pool.fetchval(
        "SELECT version FROM projection_tracking"
        " WHERE projection = $1 AND stream_id = $2",
        projection,
        stream_id,
    )
    return version


async def _customer_count(pool: asyncpg.Pool, business_id: int) -> int:
    count: int = await pool.fetchval(
        "SELECT customer_count FROM rm_categories WHERE business_id = $1",
        business_id,
    )
    return count


async def _ready_messages(env: Environment) -> int:
    """Messages waiting in the projectors' queue (none is held by a consumer: the
    projector has stopped, so an unacked delivery would be back in the queue)."""
    connection = await aio_pika.connect(env.settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            env.settings.queue_prefix + QUEUES, passive=True
        )
        return int(queue.declaration_result.message_count)
    finally:
        await connection.close()


async def _park_the_poisoned_stream(ledger: Ledger) -> tuple[int, int]:
    """Two clients with two postings each, projected by a balances projection that
    fails every event of the second client: returns (healthy, poisoned) client ids
    once the three poisoned events are parked and the healthy client is projected."""
    healthy = await _client(ledger, "Healthy", 12_345, 2_000)
    poisoned = await _client(ledger, "Poisoned", 50_000, 7_525)
    pool = ledger.pool

    async def settled() -> bool:
        return (
            len(await _parked(pool)) == 3
            and await _tracked(pool, e.client_stream(healthy)) == 3
        )

    async with running(ledger, failing_for(e.client_stream(poisoned))):
        await wait_until(settled, "3 parked events and the healthy client projected")
    return healthy, poisoned


async def test_a_failing_event_is_parked_with_its_error_and_acked_while_others_apply(
    ledger: Ledger,
) -> None:
    """Proves an event that fails both attempts is recorded in projection_parked with
    its error and acked while the other streams are applied, and that the stream's
    later events are parked at once (no second round of retries), by running the
    Relay and a Projector whose balances apply raises for one client's stream, then
    reading the parked rows, the read model and the stopped projector's queue."""
    healthy, poisoned = await _park_the_poisoned_stream(ledger)

    stream = await load_stream(ledger.pool, e.client_stream(poisoned))
    reasons = [f"RuntimeError('cannot apply {e.client_stream(poisoned)}')"] + [
        "an earlier event of its stream is parked"
    ] * 2
    assert await _parked(ledger.pool) == [
        (
            "balances",
            event.event_id,
            event.stream_id,
            event.version,
            event.position,
            reason,
        )
        for event, reason in zip(stream, reasons, strict=True)
    ]
    assert [event.version for event in stream] == [1, 2, 3]
    assert await _figures(ledger.pool, healthy) == (12_345, 2_000, 3)
    assert await _figures(ledger.pool, poisoned) is None
    assert await _tracked(ledger.pool, e.client_stream(poisoned)) is None
    # The same projector's statements projection applied the poisoned stream whole.
    assert await _tracked(ledger.pool, e.client_stream(poisoned), "statements") == 3
    assert await _customer_count(ledger.pool, ledger.business_id) == 1
    assert await _ready_messages(ledger.env) == 0


async def test_retry_parked_applies_the_parked_events_once_their_cause_is_gone(
    ledger: Ledger,
) -> None:
    """Proves retry_parked applies parked events from the store and clears them, by
    parking a client's three events and calling it with the real balances projection:
    the parked list is empty and the client's figures are exactly 500.00 / 75.25."""
    healthy, poisoned = await _park_the_poisoned_stream(ledger)

    await retry_parked(ledger.pool, balances)

    assert await _parked(ledger.pool) == []
    assert await _figures(ledger.pool, poisoned) == (50_000, 7_525, 3)
    assert await _figures(ledger.pool, healthy) == (12_345, 2_000, 3)
    assert await _tracked(ledger.pool, e.client_stream(poisoned)) == 3
    assert await _customer_count(ledger.pool, ledger.business_id) == 2
    await retry_parked(ledger.pool, balances)  # nothing left: a no-op
    assert await _figures(ledger.pool, poisoned) == (50_000, 7_525, 3)


async def test_a_parked_event_that_still_fails_stays_parked(ledger: Ledger) -> None:
    """Proves retry_parked keeps an event whose cause is not gone, by retrying the
    parked events with the same failing projection: the three rows are unchanged and
    nothing of the client reaches the read model."""
    _, poisoned = await _park_the_poisoned_stream(ledger)
    parked = await _parked(ledger.pool)

    await retry_parked(ledger.pool, failing_for(e.client_stream(poisoned)))

    assert await _parked(ledger.pool) == parked
    assert await _figures(ledger.pool, poisoned) is None


async def test_a_restarted_projector_applies_the_parked_events_first(
    ledger: Ledger,
) -> None:
    """Proves a Projector retries parked events when it starts, with no message to
    trigger it, by parking a client's events and then running the Relay and a
    Projector of the real balances projection until the parked list is empty."""
    healthy, poisoned = await _park_the_poisoned_stream(ledger)

    async def cleared() -> bool:
        return await _parked(ledger.pool) == []

    async with running(ledger, balances):
        await wait_until(cleared, "the parked events to be applied on start")

    assert await _figures(ledger.pool, poisoned) == (50_000, 7_525, 3)
    assert await _figures(ledger.pool, healthy) == (12_345, 2_000, 3)
    assert await _customer_count(ledger.pool, ledger.business_id) == 2
    assert await _ready_messages(ledger.env) == 0
