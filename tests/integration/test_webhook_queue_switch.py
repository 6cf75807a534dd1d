"""Switching LEDGER_QUEUE_TYPE under the webhook worker, both ways
(services/webhooks/old_queue.py): events that wait in the old type's queue while no
worker runs reach the endpoint once each, in order, from a worker of the new type,
which then deletes the old queue. Back from quorum, the old queue is a quorum queue
with single-active-consumer, which refuses basic.get: it is emptied through a
consumer. On one node, quorum queues prove the code path, not replication."""

from __future__ import annotations

import asyncpg
import msgspec
import pytest

from shared.bus import broker, webhook_queue
from shared.bus.old_queues import existing
from shared.config import Settings
from tests.integration.scenarios import wait_until
from tests.integration.webhook_calls import (
    debit,
    endpoint,
    event_ids,
    head_position,
    new_business,
    new_client,
)
from tests.integration.webhook_receiver import (
    receiving,
    webhook_service,
    webhook_settings,
)
from tests.support.environment import create_environment, drop_environment
from tests.support.service import http_client, workers


async def _held(settings: Settings, queue_type: str) -> int | None:
    """The webhook queue of the type: its ready messages (None: no such queue)."""
    name = webhook_queue.queue_name(settings.exchange, queue_type)
    connection = await broker.connect(settings.amqp_url)
    try:
        found = await existing(connection, name)
    finally:
        await connection.close()
    return None if found is None else found.message_count


@pytest.mark.parametrize(
    ("before", "after"), [("classic", "quorum"), ("quorum", "classic")]
)
async def test_a_worker_of_the_new_type_delivers_what_the_old_queue_held(
    servers: tuple[str, str], before: str, after: str
) -> None:
    """A client is delivered by a worker of the first type; three debits are then
    posted with no worker running, so they wait in its queue (exactly 3 messages);
    a worker of the other type delivers them: the receiver has the business's four
    events, each once, in position order, every delivery row is delivered, and the
    old queue is gone."""
    environment = await create_environment(*servers, tag="whq", queue_type=before)
    old = webhook_settings(environment)
    new = msgspec.structs.replace(old, queue_type=after)
    admin = environment.admin_url
    try:
        async with receiving() as receiver:
            pool = await asyncpg.create_pool(admin, min_size=1, max_size=2)
            try:
                async with webhook_service(old) as api:
                    business_id, headers = await new_business(old, pool)
                    after_position = await head_position(pool)
                    await endpoint(api, headers, receiver.url, ["*"])
                    client_id = await new_client(api, headers, "Switch Ltd")

                    async def first() -> bool:
                        return len(receiver.unique_event_ids()) == 1

                    await wait_until(first, "client.created delivered")
                async with workers(old), http_client(old) as api:
                    for amount in (1, 2, 3):
                        await debit(api, headers, client_id, amount)

                    async def queued() -> bool:
                        return await _held(old, before) == 3

                    await wait_until(queued, "three events in the old queue")
                expected = await event_ids(pool, business_id, after_position)
                assert len(expected) == 4
                async with webhook_service(new):

                    async def delivered() -> bool:
                        rows = await pool.fetchval(
                            "SELECT count(*) FROM webhook_deliveries"
                            " WHERE status = 'delivered'"
                        )
                        return receiver.unique_event_ids() == expected and rows == 4

                    await wait_until(delivered, "the four events, in order")

                    async def gone() -> bool:
                        return await _held(new, before) is None

                    await wait_until(gone, "the old queue deleted")
                assert len(receiver.requests) == 4
            finally:
                await pool.close()
    finally:
        await drop_environment(environment)
