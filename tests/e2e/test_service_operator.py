"""The running service as an operator sees it: the probes, the CLI that makes
businesses, the supervisor's children, and the events it publishes to RabbitMQ."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import Any

import aio_pika
import aio_pika.abc
import asyncpg
import pytest

from shared.config import Settings
from shared.response_bodies import timestamp
from tests.e2e.deadlines import wait_until
from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import CATEGORY_FIELDS, TIMESTAMP_PATTERN
from tests.e2e.supervisor import LedgerService, children_of, create_business, run_cli


async def test_health_and_readiness_answer_without_a_key(anonymous: Api) -> None:
    """Proves the probes are public and report every dependency as healthy, by calling
    /healthz and /readyz without an Authorization header."""
    health = await anonymous.get("/healthz")
    assert (health.status, health.body) == (200, {"status": "ok"})
    ready = await anonymous.get("/readyz")
    assert ready.status == 200
    assert ready.body["status"] == "ready"
    assert ready.body["checks"] == {
        "postgres": "ok",
        "rabbitmq": "ok",
        "projection_lag": "ok",
    }
    assert ready.body["parked_events"] == 0


async def test_business_create_prints_the_documented_json(
    ledger: LedgerService,
) -> None:
    """Proves `ledger business create NAME --json` prints the business, its owner, an
    unguessable bid and a first key, by running the real CLI and parsing its output."""
    created = await create_business(ledger)
    assert list(created) == [
        "business_id",
        "owner_id",
        "bid",
        "api_key",
        "key_id",
        "currency",
    ]
    assert all(
        isinstance(created[name], int) for name in ("business_id", "owner_id", "key_id")
    )
    assert created["currency"] == "GHS"
    # 32 random bytes each, URL-safe base64 (shared/store/api_keys.py); keys carry
    # "lk_".
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", created["bid"])
    assert re.fullmatch(r"lk_[A-Za-z0-9_-]{43}", created["api_key"])
    other = await create_business(ledger)
    assert other["business_id"] != created["business_id"]
    assert other["bid"] != created["bid"]
    assert other["api_key"] != created["api_key"]


async def test_business_create_takes_a_currency_and_refuses_a_bad_one(
    ledger: LedgerService,
) -> None:
    """Proves --currency sets an ISO 4217 code (normalised to upper case) and a code
    that is not one exits 2 with a message, by running the CLI both ways."""
    created = await create_business(ledger, "--currency", "usd")
    assert created["currency"] == "USD"
    refused = await run_cli(
        ledger, "business", "create", "Bad", "--currency", "dollars"
    )
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert "ISO 4217" in refused.stderr


async def test_each_business_starts_with_the_uncategorised_category(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves a new business has exactly one category, "Uncategorised", with no
    customers, its id and time those of its one category.created event, by listing
    the categories of a business the CLI just made."""
    listed = await api.get("/api/v3/clients/categories")
    assert listed.status == 200
    [category] = listed.body
    assert list(category) == CATEGORY_FIELDS
    assert re.fullmatch(TIMESTAMP_PATTERN, category["created_at"])
    [stored] = await admin_pool.fetch(
        "SELECT (payload->>'category_id')::bigint AS category_id, recorded_at"
        " FROM events WHERE business_id = $1 AND type = 'category.created'",
        business["business_id"],
    )
    assert category == {
        "id": stored["category_id"],
        "business_id": business["business_id"],
        "name": "Uncategorised",
        "description": "",
        "created_at": timestamp(stored["recorded_at"]),
        "updated_at": timestamp(stored["recorded_at"]),
        "archived": False,
        "customer_count": 0,
    }


def command_line(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return raw.decode().split("\0")[:-1]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="lists children through /proc")
async def test_run_starts_the_api_the_relay_one_projector_and_the_two_workers(
    ledger: LedgerService,
) -> None:
    """Proves `ledger run` supervises one child per role, each a `services.cli.main`
    process: one projector (it applies every projection), the monitor and the
    webhook worker, by reading the supervisor's children from /proc."""
    roles = sorted(
        " ".join(command_line(child)[3:]) for child in children_of(ledger.process.pid)
    )
    assert roles == ["api", "monitor", "projector", "relay", "webhooks"]


async def _client_events_from_our_own_queue(
    settings: Settings, api: Api, business_id: int
) -> tuple[int, list[aio_pika.abc.AbstractIncomingMessage]]:
    """Bind a queue of our own to `<business_id>.#`, then create a client (with a
    correlation id and an idempotency key) and debit it: the client's id and the two
    messages of its stream, as they arrive."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(settings.exchange, ensure=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=f"{business_id}.#")
        client = await api.post(
            "/api/v3/clients",
            {"business_name": "Subscribed"},
            headers={"X-Correlation-Id": "corr-e2e-1", "Idempotency-Key": "sub-1"},
        )
        await api.post_transaction(client.body["id"], "debit", "43228120.29")
        received: list[aio_pika.abc.AbstractIncomingMessage] = []

        stream = f"client-{client.body['id']}"

        async def two_arrived() -> bool:
            # The business's own category.created may arrive too (published after
            # the bind when the relay was behind): only the client's stream counts.
            message = await queue.get(no_ack=True, fail=False)
            if (
                message is not None
                and (message.headers or {}).get("stream_id") == stream
            ):
                received.append(message)
            return len(received) >= 2

        await wait_until(two_arrived, 10.0, "two events reach the subscriber's queue")
    finally:
        await connection.close()
    return int(client.body["id"]), received


def _assert_published_as_stored(
    message: aio_pika.abc.AbstractIncomingMessage,
    row: asyncpg.Record,
    business: dict[str, Any],
) -> None:
    """The message carries the stored event's routing key, id, delivery mode,
    content type, headers and body."""
    assert message.routing_key == f"{business['business_id']}.{row['type']}"
    assert message.message_id == str(row["event_id"])
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.content_type == "application/json"
    assert message.headers == {
        "type": row["type"],
        "schema_version": row["schema_version"],
        "stream_id": row["stream_id"],
        "version": row["version"],
        "position": row["position"],
        "business_id": business["business_id"],
        "business_slot": zlib.crc32(str(business["business_id"]).encode()) % 64,
    }
    body = json.loads(message.body)
    assert (body["event_id"], body["type"], body["position"]) == (
        str(row["event_id"]),
        row["type"],
        row["position"],
    )


async def test_events_reach_rabbitmq_for_outside_subscribers(
    ledger: LedgerService,
    api: Api,
    business: dict[str, Any],
    admin_pool: asyncpg.Pool,
) -> None:
    """Proves the relay publishes each committed event to the topic exchange with the
    documented routing key, message id, headers and persistence, by binding a queue
    of our own to `<business_id>.#` and matching what arrives with the event store."""
    client_id, received = await _client_events_from_our_own_queue(
        ledger.environment.settings, api, business["business_id"]
    )
    rows = await admin_pool.fetch(
        "SELECT event_id, type, stream_id, version, position, schema_version"
        " FROM events WHERE stream_id = $1 ORDER BY version",
        f"client-{client_id}",
    )
    assert [row["type"] for row in rows] == ["client.created", "transaction.posted"]
    for message, row in zip(received, rows, strict=True):
        _assert_published_as_stored(message, row, business)
    created = json.loads(received[0].body)
    assert created["metadata"]["correlation_id"] == "corr-e2e-1"
    assert created["metadata"]["idempotency_key"] == "sub-1"
    assert created["metadata"]["principal"] == f"api_key:{business['key_id']}"
    assert created["payload"]["client_id"] == client_id
