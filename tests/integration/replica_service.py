"""The in-process API with the local hot standby as its read replica, and what the
read-replica tests ask it: the replica's state in /readyz, its counters in /metrics,
and a request repeated until a fresh view routed it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.metrics_samples import family, sample, scrape
from tests.integration.scenarios import wait_until
from tests.support.environment import Environment
from tests.support.service import http_client
from tests.support.standby import require_standby, with_replica

# Deadline for the replica to join the rotation: the standby must first replay the
# test database's creation, then the protocol's settling (three polls) and catch-up.
JOIN_DEADLINE_S = 30.0
ROUTED_DEADLINE_S = 30.0
T = TypeVar("T")


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


async def replica_state(client: TestClient, name: str | None = None) -> dict[str, Any]:
    """The replica's entry in /readyz (the one replica's, or the one called `name`),
    which answers 200 whatever its state."""
    answer = await client.get("/readyz")
    body = await answer.json()
    assert answer.status == 200, body
    if name is None:
        [replica] = body["replicas"]
    else:
        [replica] = [r for r in body["replicas"] if r["name"] == name]
    return dict(replica)


async def wait_in_rotation(
    client: TestClient, expected: bool, name: str | None = None
) -> None:
    async def reached() -> bool:
        return (await replica_state(client, name))["in_rotation"] is expected

    await wait_until(reached, f"the replica in rotation: {expected}", JOIN_DEADLINE_S)


async def replica_metric(
    client: TestClient, name: str, replica: str | None = None
) -> float:
    """`name` (ledger_replica_...) of the one replica, or of `replica`, from
    /metrics."""
    samples = await scrape(client)
    if replica is not None:
        return sample(samples, name, replica=replica)
    [value] = family(samples, name).values()
    return value


class Routed(NamedTuple):
    """What a request routed by a fresh view answered, and the replica reads and
    fallbacks it added."""

    answer: Any
    reads: float
    fallbacks: float


async def _counters(client: TestClient) -> tuple[float, float, float]:
    samples = await scrape(client)
    [reads] = family(samples, "ledger_replica_reads_total").values()
    [fallbacks] = family(samples, "ledger_replica_fallbacks_total").values()
    return reads, fallbacks, sample(samples, "ledger_replica_bypasses_total")


async def routed(client: TestClient, call: Callable[[], Awaitable[T]]) -> Routed:
    """`call()` once more while the view of the rotation was too old (a stall of
    this loaded machine sends a read straight to the primary, counted as a bypass),
    until it ran on a fresh one: what that answered, and the replica's reads and
    fallbacks during it. Nothing else may read meanwhile."""
    deadline = asyncio.get_running_loop().time() + ROUTED_DEADLINE_S
    while True:
        reads, fallbacks, bypasses = await _counters(client)
        answer = await call()
        after = await _counters(client)
        if after[2] == bypasses:
            return Routed(answer, after[0] - reads, after[1] - fallbacks)
        assert asyncio.get_running_loop().time() < deadline, "no fresh view in 30 s"
