"""The in-process API with the local hot standby as its read replica, and what the
read-replica tests ask it: the replica's state in /readyz and its counters in
/metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.metrics_samples import family, scrape
from tests.integration.scenarios import wait_until
from tests.support.environment import Environment
from tests.support.service import http_client
from tests.support.standby import require_standby, with_replica

# Deadline for the replica to join the rotation: the standby must first replay the
# test database's creation, then the protocol's settling (three polls) and catch-up.
JOIN_DEADLINE_S = 30.0


@pytest.fixture
async def replicated(
    environment: Environment, service: TestClient
) -> AsyncIterator[TestClient]:
    """A second API app on the session's database (the `service` fixture runs its
    relay and projectors) reading from the standby, once the standby is in rotation."""
    await require_standby()
    async with http_client(with_replica(environment)) as client:
        await wait_in_rotation(client, True)
        yield client


async def replica_state(client: TestClient) -> dict[str, Any]:
    """The one replica's entry in /readyz, which answers 200 whatever its state."""
    answer = await client.get("/readyz")
    body = await answer.json()
    assert answer.status == 200, body
    [replica] = body["replicas"]
    return dict(replica)


async def wait_in_rotation(client: TestClient, expected: bool) -> None:
    async def reached() -> bool:
        return (await replica_state(client))["in_rotation"] is expected

    await wait_until(reached, f"the replica in rotation: {expected}", JOIN_DEADLINE_S)


async def replica_metric(client: TestClient, name: str) -> float:
    """`name` (ledger_replica_...) of the one replica, from /metrics."""
    [value] = family(await scrape(client), name).values()
    return value
