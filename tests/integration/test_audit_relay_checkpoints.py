"""The relay records chain heads: with a short checkpoint interval it writes the new
heads to chain_checkpoints and as a ledger.checkpoint event, which it then publishes,
in an environment of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest

from services.cli.businesses import provision_business
from services.cli.workers import wire_relay
from services.command_api.appender import Appender
from shared import events as e
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


@pytest.fixture
async def own(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    """An environment of its own: its relay publishes every event of its database to
    its own exchange and queues, out of the way of tests that count messages."""
    env = await create_environment(*servers, tag="ckpt")
    yield env
    await drop_environment(env)


async def test_the_relay_checkpoints_chain_heads_and_publishes_them(
    own: Environment,
) -> None:
    """A relay with a short checkpoint interval records the new heads in
    chain_checkpoints and as a ledger.checkpoint event, which it then publishes."""
    business_id = id_of(await provision_business(own.settings, "Checkpointed"))
    pool = await create_pool(own.settings.database_url, max_size=4)
    appender = Appender(pool, own.settings.hmac_key.encode(), 500)
    appender.start()
    settings = msgspec.structs.replace(own.settings, checkpoint_interval_s=0.2)
    stop = asyncio.Event()
    running = asyncio.ensure_future(run_until_stopped(wire_relay(settings).run, stop))
    try:
        client_id = await create_client(appender, business_id)
        await submit(appender, transaction(business_id, client_id, 500))
        stream = e.client_stream(client_id)

        async def published_checkpoint() -> bool:
            row = await pool.fetchrow(
                "SELECT e.position FROM chain_checkpoints c"
                " JOIN events e ON e.stream_id = $2 AND e.type = 'ledger.checkpoint'"
                "  AND e.payload->'heads' @> jsonb_build_array("
                "    jsonb_build_object('stream_id', $1::text, 'version', 2))"
                " WHERE c.stream_id = $1 AND c.version = 2",
                stream,
                e.checkpoint_stream(business_id),
            )
            if row is None:
                return False
            published = await pool.fetchval(
                "SELECT position FROM relay_cursor WHERE relay = 'main'"
            )
            return bool(published and published >= row["position"])

        await wait_until(published_checkpoint, "a published checkpoint of the head")
        head = await pool.fetchval(
            "SELECT hash FROM events WHERE stream_id = $1 AND version = 2", stream
        )
        recorded = await pool.fetchval(
            "SELECT hash FROM chain_checkpoints WHERE stream_id = $1", stream
        )
        assert recorded == head
    finally:
        stop.set()
        await running
        await appender.stop()
        await pool.close()
