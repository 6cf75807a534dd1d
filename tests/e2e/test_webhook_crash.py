"""The webhook worker SIGKILLed mid-delivery resumes without loss: a real `ledger
webhooks` process, fed by a real `ledger relay` through RabbitMQ, delivers to a real
aiohttp receiver on 127.0.0.1 and is killed at a named moment, either while the
receiver holds a request open or held at `webhooks.after_send` (the receiver has
answered 200, the delivery row is not yet marked delivered). A second worker then
delivers everything, the killed delivery again (at least once), in position order.

Commands go through an in-process Appender and the endpoints are created through the
in-process HTTP API (which binds the webhook queue); the relay and both workers are
`python -m services.cli.main` processes, as in a deployment.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import msgspec
import pytest

from services.cli.businesses import provision_business
from services.command_api.appender import Appender
from shared.client import verify_signature
from shared.webhook_rules import matches_any
from tests.e2e.deadlines import START_DEADLINE_S, wait_until
from tests.e2e.webhook_receiver import HELD_INDEX, Receiver, receiving
from tests.e2e.worker_processes import (
    admin_connection,
    killed_at_end,
    partitioned_environment,
    paused,
    running_appender,
    sigkill,
    start_worker,
)
from tests.integration.scenarios import create_client, id_of, submit, transaction
from tests.support.environment import Environment, free_port, service_environment
from tests.support.service import http_client

POINT = "webhooks.after_send"
PATTERNS = (["client.*", "transaction.posted"], ["transaction.posted"])
WEBHOOK_ENVIRONMENT = {
    "LEDGER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "1",
    "LEDGER_WEBHOOK_RETRY_BASE_S": "0.05",
    "LEDGER_WEBHOOK_RETRY_CAP_S": "0.2",
    "LEDGER_WEBHOOK_POLL_INTERVAL_S": "0.05",
    # Far longer than the test takes to kill a worker holding a request open.
    "LEDGER_WEBHOOK_TIMEOUT_S": "60",
    "LEDGER_WEBHOOK_SENDERS": "2",
}


@pytest.fixture
async def own(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    async with partitioned_environment(servers, "hookcrash", 1) as environment:
        yield environment


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    with killed_at_end() as started:
        yield started


async def _endpoints(own: Environment, api_key: object, url: str) -> list[str]:
    """One endpoint per PATTERNS entry, through the API (it binds the webhook queue
    before it answers); their secrets."""
    settings = msgspec.structs.replace(own.settings, webhook_allow_private_addresses=1)
    headers = {"Authorization": f"Bearer {api_key}"}
    secrets = []
    async with http_client(settings) as api:
        for index, patterns in enumerate(PATTERNS):
            body = {"url": f"{url}{index}", "events": patterns}
            answer = await api.post("/api/v3/webhooks", json=body, headers=headers)
            created = await answer.json()
            assert (answer.status, created["id"]) == (201, index + 1), created
            secrets.append(str(created["secret"]))
    return secrets


async def _round(
    appender: Appender, business_id: int, clients: list[int], new: int
) -> None:
    """`new` clients more, then two postings to each client."""
    for index in range(new):
        clients.append(await create_client(appender, business_id, f"Client {index}"))
    for amount_minor in (1_000, 2_000):
        for client_id in clients:
            await submit(appender, transaction(business_id, client_id, amount_minor))


async def _expected(admin: asyncpg.Connection, business_id: int) -> list[list[str]]:
    """Per endpoint, the ids of the business's events it takes, in position order."""
    rows = await admin.fetch(
        "SELECT event_id, type FROM events WHERE business_id = $1 ORDER BY position",
        business_id,
    )
    return [
        [str(row["event_id"]) for row in rows if matches_any(patterns, row["type"])]
        for patterns in PATTERNS
    ]


async def _delivered(admin: asyncpg.Connection) -> dict[int, list[str]]:
    """Endpoint index -> the event ids its delivered rows hold, in position order."""
    rows = await admin.fetch(
        "SELECT endpoint_id, event_id FROM webhook_deliveries"
        " WHERE status = 'delivered' ORDER BY event_position"
    )
    delivered: dict[int, list[str]] = {index: [] for index in range(len(PATTERNS))}
    for row in rows:
        delivered[row["endpoint_id"] - 1].append(str(row["event_id"]))
    return delivered


def _running(process: subprocess.Popen[bytes], log: Path) -> None:
    assert process.poll() is None, log.read_text(errors="replace")


async def _killed_in_window(
    killed: subprocess.Popen[bytes],
    log: Path,
    receiver: Receiver,
    admin: asyncpg.Connection,
    round_one: list[list[str]],
) -> tuple[int, str]:
    """Wait until the killed worker is at its moment (the receiver holds a request,
    or the worker logged its pause) with exactly one request received and not
    recorded, and the other endpoint's first round all delivered (its sender idle):
    that request's endpoint and event id."""
    window: list[tuple[int, str]] = []

    async def one_in_window() -> bool:
        if receiver.hold:
            _running(killed, log)
            at_moment = receiver.holding.is_set()
        else:
            at_moment = paused(killed, log, POINT)
        delivered = await _delivered(admin)
        window[:] = [
            (item.endpoint, item.event_id)
            for item in receiver.arrivals
            if item.event_id not in delivered[item.endpoint]
        ]
        return (
            at_moment
            and len(window) == 1
            and delivered[1 - window[0][0]] == round_one[1 - window[0][0]]
        )

    await wait_until(one_in_window, START_DEADLINE_S, "the worker at its moment")
    return window[0]


async def _all_delivered(
    worker: subprocess.Popen[bytes],
    log: Path,
    admin: asyncpg.Connection,
    expected: list[list[str]],
) -> None:
    async def delivered_all() -> bool:
        _running(worker, log)
        return list((await _delivered(admin)).values()) == expected

    await wait_until(delivered_all, START_DEADLINE_S, "every delivery delivered")


def _received_each_once_in_order(
    receiver: Receiver,
    secrets: list[str],
    expected: list[list[str]],
    killed: tuple[int, str],
) -> None:
    """Each endpoint received its events in position order, the killed delivery
    twice in a row (sent again by the second worker) and nothing else twice, every
    request signed with its endpoint's secret."""
    endpoint, event_id = killed
    index = expected[endpoint].index(event_id)
    assert (endpoint, index) == ((0, HELD_INDEX) if receiver.hold else (endpoint, 0))
    resent = expected[endpoint][: index + 1] + expected[endpoint][index:]
    assert receiver.of(endpoint) == resent
    assert receiver.of(1 - endpoint) == expected[1 - endpoint]
    for each in (0, 1):
        assert list(dict.fromkeys(receiver.of(each))) == expected[each]
    assert [len(ids) for ids in expected] == [13, 10]
    now = time.time()
    assert all(
        verify_signature(secrets[item.endpoint], item.signature, item.body, now)
        for item in receiver.arrivals
    )


@pytest.mark.parametrize("moment", ["receiver_holds_request", POINT])
async def test_a_webhook_worker_killed_mid_delivery_resumes_without_loss(
    own: Environment,
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
    moment: str,
) -> None:
    """Two endpoints on one receiver, events relayed by a `ledger relay` process: the
    first worker is SIGKILLed with one delivery at its moment (the receiver holding
    endpoint 0's third request open, or the worker paused after a 200 and before the
    row's commit), that row still pending with no attempt recorded; more events are
    posted; a second worker delivers every event to each endpoint in position order,
    the killed delivery sent again right after its first arrival and nothing else
    twice, every row `delivered` and every request signed with its endpoint's
    secret."""
    created = await provision_business(own.settings, "Hooked")
    business_id = id_of(created)
    env = {**service_environment(own, free_port()), **WEBHOOK_ENVIRONMENT}
    start_worker(processes, ["relay"], env, tmp_path / "relay.log")
    hold = moment == "receiver_holds_request"
    killed_log, log = tmp_path / "webhooks-killed.log", tmp_path / "webhooks.log"
    async with (
        receiving(hold) as receiver,
        running_appender(own) as appender,
        admin_connection(own) as admin,
    ):
        secrets = await _endpoints(own, created["api_key"], receiver.url)
        pause_at = "" if hold else POINT
        killed = start_worker(
            processes,
            ["webhooks"],
            {**env, "LEDGER_TEST_PAUSE_AT": pause_at},
            killed_log,
        )
        clients: list[int] = []
        await _round(appender, business_id, clients, 2)
        round_one = await _expected(admin, business_id)
        endpoint, event_id = await _killed_in_window(
            killed, killed_log, receiver, admin, round_one
        )
        row = await admin.fetchrow(
            "SELECT status, attempts FROM webhook_deliveries"
            " WHERE endpoint_id = $1 AND event_id = $2::uuid",
            endpoint + 1,
            event_id,
        )
        assert (row["status"], row["attempts"]) == ("pending", 0)
        sigkill(killed)
        await _round(appender, business_id, clients, 1)
        expected = await _expected(admin, business_id)
        second = start_worker(processes, ["webhooks"], env, log)
        await _all_delivered(second, log, admin, expected)
        assert (
            await admin.fetchval(
                "SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'"
            )
            == 0
        )
    _received_each_once_in_order(receiver, secrets, expected, (endpoint, event_id))
