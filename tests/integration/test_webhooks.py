"""Webhooks end to end in process: the real API, relay, projector and webhook worker on
PostgreSQL and RabbitMQ, delivering to a real aiohttp receiver on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import time

import asyncpg
import msgspec
from aiohttp.test_utils import TestClient

from services.webhooks.worker import SECRET_ERROR
from shared.client import verify_signature
from shared.config import Settings
from tests.integration.scenarios import wait_until
from tests.integration.webhook_calls import (
    call,
    count_at_least,
    debit,
    endpoint,
    event_ids,
    head_position,
    new_business,
    new_client,
)
from tests.integration.webhook_receiver import Receiver, receiving
from tests.support.environment import Environment
from tests.support.service import http_client


async def test_a_delivery_is_signed_and_its_secret_is_shown_once_and_sealed(
    hook_api: TestClient,
    hook_settings: Settings,
    hook_admin: asyncpg.Pool,
    hook_receiver: Receiver,
) -> None:
    """A client created after the endpoint reaches the receiver as the published
    envelope, with its event id and a signature both verify_signature and a
    recomputed HMAC accept; GET never shows the secret, and the database holds no
    copy of it in clear."""
    business_id, headers = await new_business(hook_settings, hook_admin)
    created = await endpoint(hook_api, headers, hook_receiver.url, ["client.*"])
    secret = str(created["secret"])
    assert secret.startswith("whsec_") and created["events"] == ["client.*"]
    client_id = await new_client(hook_api, headers, "Signed Ltd")
    await wait_until(lambda: count_at_least(hook_receiver, 1), "one delivery")
    [received] = hook_receiver.requests
    envelope = msgspec.json.decode(received.body)
    assert envelope["type"] == "client.created"
    assert envelope["payload"]["client_id"] == client_id
    assert received.event_id == envelope["event_id"]
    assert verify_signature(secret, received.signature, received.body, time.time())
    t, v1 = (part.split("=", 1)[1] for part in received.signature.split(","))
    signed = t.encode() + b"." + received.body
    assert v1 == hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    status, shown = await call(
        hook_api, "GET", f"/api/v3/webhooks/{created['id']}", headers
    )
    assert status == 200 and "secret" not in shown
    status, listed = await call(hook_api, "GET", "/api/v3/webhooks", headers)
    assert [item["id"] for item in listed["data"]] == [created["id"]]  # type: ignore[union-attr, index]
    sealed = await hook_admin.fetchval(
        "SELECT secret_sealed FROM webhook_endpoints WHERE id = $1", created["id"]
    )
    assert secret.encode() not in sealed and len(sealed) == 8 + 12 + 16 + len(secret)
    assert business_id > 0


async def test_a_receiver_failing_three_times_gets_each_event_once_in_order(
    hook_api: TestClient,
    hook_settings: Settings,
    hook_admin: asyncpg.Pool,
    hook_receiver: Receiver,
) -> None:
    """The receiver answers 500 three times, then 200: after dedupe by event id it
    has every event of the business since the endpoint (which starts after the
    store's last position when made), in position order, and the first delivery's
    log shows its four attempts."""
    business_id, headers = await new_business(hook_settings, hook_admin)
    after = await head_position(hook_admin)
    hook_receiver.statuses = [500, 500, 500]
    created = await endpoint(hook_api, headers, hook_receiver.url, ["*"])
    start = await hook_admin.fetchval(
        "SELECT start_position FROM webhook_endpoints WHERE id = $1", created["id"]
    )
    assert start == after
    client_id = await new_client(hook_api, headers, "Flaky Ltd")
    for amount in (1, 2, 3):
        await debit(hook_api, headers, client_id, amount)
    expected = await event_ids(hook_admin, business_id, after)
    assert len(expected) == 4

    async def all_received() -> bool:
        # Received, and recorded: the last 2xx reaches the receiver just before its
        # delivery row is marked delivered.
        delivered = await hook_admin.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1"
            " AND status = 'delivered'",
            created["id"],
        )
        return hook_receiver.unique_event_ids() == expected and delivered == 4

    await wait_until(all_received, "every event, in order, recorded")
    assert len(hook_receiver.requests) == 4 + 3
    path = f"/api/v3/webhooks/{created['id']}/deliveries"
    status, page = await call(hook_api, "GET", path, headers)
    assert status == 200 and page["next_before"] is None
    log = page["data"]
    assert (
        isinstance(log, list) and [item["event_id"] for item in log] == expected[::-1]
    )
    assert [item["attempts"] for item in log] == [1, 1, 1, 4]
    assert {item["status"] for item in log} == {"delivered"}


async def test_a_disabled_endpoint_stops_and_gets_its_queued_events_when_enabled(
    hook_api: TestClient,
    hook_settings: Settings,
    hook_admin: asyncpg.Pool,
    hook_receiver: Receiver,
) -> None:
    """A receiver that always answers 503 gets four attempts (the failures bound),
    then the endpoint is disabled; events posted meanwhile are queued, not sent; once
    the receiver answers 200 and the endpoint is enabled, it gets all, in order."""
    business_id, headers = await new_business(hook_settings, hook_admin)
    after = await head_position(hook_admin)
    hook_receiver.status = 503
    created = await endpoint(
        hook_api, headers, hook_receiver.url, ["client.*", "transaction.*"]
    )
    path = f"/api/v3/webhooks/{created['id']}"
    client_id = await new_client(hook_api, headers, "Down Ltd")

    async def disabled() -> bool:
        return (await call(hook_api, "GET", path, headers))[1]["enabled"] is False

    await wait_until(disabled, "the endpoint disabled")
    assert len(hook_receiver.requests) == 4
    for amount in (5, 6):
        await debit(hook_api, headers, client_id, amount)
    expected = await event_ids(hook_admin, business_id, after)

    async def queued() -> bool:
        count = await hook_admin.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1",
            created["id"],
        )
        return bool(count == 3)

    await wait_until(queued, "the postings queued")
    assert len(hook_receiver.requests) == 4
    hook_receiver.status = 200
    status, enabled = await call(hook_api, "POST", path + "/enable", headers)
    assert status == 200 and enabled["enabled"] is True

    async def all_received() -> bool:
        return hook_receiver.unique_event_ids() == expected

    await wait_until(all_received, "the queued events, in order")


async def test_an_endpoint_whose_secret_does_not_open_fails_alone(
    hook_api: TestClient,
    hook_settings: Settings,
    hook_admin: asyncpg.Pool,
    hook_receiver: Receiver,
) -> None:
    """One business's endpoint has its sealed secret damaged (a byte flipped by the
    admin): its delivery fails with a clear error, attempt after attempt, until the
    failures bound disables it, and its receiver gets nothing; meanwhile another
    business's endpoint receives its event."""
    _, broken_headers = await new_business(hook_settings, hook_admin)
    _, headers = await new_business(hook_settings, hook_admin)
    async with receiving() as broken_receiver:
        broken = await endpoint(
            hook_api, broken_headers, broken_receiver.url, ["client.created"]
        )
        await hook_admin.execute(
            "UPDATE webhook_endpoints SET secret_sealed = set_byte(secret_sealed,"
            " length(secret_sealed) - 1,"
            " get_byte(secret_sealed, length(secret_sealed) - 1) # 255) WHERE id = $1",
            broken["id"],
        )
        await endpoint(hook_api, headers, hook_receiver.url, ["client.created"])
        await new_client(hook_api, broken_headers, "Sealed Shut Ltd")
        await new_client(hook_api, headers, "Still Served Ltd")
        path = f"/api/v3/webhooks/{broken['id']}"

        async def disabled() -> bool:
            answer = await call(hook_api, "GET", path, broken_headers)
            return answer[1]["enabled"] is False

        await wait_until(disabled, "the broken endpoint disabled")
        await wait_until(lambda: count_at_least(hook_receiver, 1), "the other event")
        assert broken_receiver.requests == []
    status, page = await call(hook_api, "GET", path + "/deliveries", broken_headers)
    assert status == 200
    [delivery] = page["data"]  # type: ignore[misc]
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == (
        "pending",
        hook_settings.webhook_failures_max,
        SECRET_ERROR,
    )
    [received] = hook_receiver.requests
    assert msgspec.json.decode(received.body)["payload"]["business_name"] == (
        "Still Served Ltd"
    )


async def test_private_and_metadata_addresses_are_refused_when_not_allowed(
    hook_environment: Environment, hook_settings: Settings, hook_admin: asyncpg.Pool
) -> None:
    """With LEDGER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES=0 every loopback, private,
    metadata or mapped-IPv6 URL (and a malformed one, a 64-character host label
    among them) is a 422 on `url`, and no endpoint is written."""
    strict = msgspec.structs.replace(hook_settings, webhook_allow_private_addresses=0)
    business_id, headers = await new_business(hook_settings, hook_admin)
    urls = [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:a9fe:a9fe]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://[::1]/hook",
        "https://user:pw@example.com/hook",
        "ftp://example.com/hook",
        "http://" + "a" * 64 + ".example.com/hook",
    ]
    async with http_client(strict) as client:
        for url in urls:
            body = {"url": url, "events": ["*"]}
            status, answer = await call(
                client, "POST", "/api/v3/webhooks", headers, body
            )
            assert status == 422 and list(answer["errors"]) == ["url"], (url, answer)  # type: ignore[call-overload]
        status, answer = await call(
            client,
            "POST",
            "/api/v3/webhooks",
            headers,
            {"url": "https://x.io", "events": ["Bad"]},
        )
        assert status == 422 and list(answer["errors"]) == ["events"]  # type: ignore[call-overload]
    count = await hook_admin.fetchval(
        "SELECT count(*) FROM webhook_endpoints WHERE business_id = $1", business_id
    )
    assert count == 0


async def test_an_unreachable_broker_answers_503_and_writes_nothing(
    hook_settings: Settings, hook_admin: asyncpg.Pool
) -> None:
    """With RabbitMQ's URL pointing at a closed port, creating an endpoint answers 503
    (Retry-After) and no endpoint is written."""
    business_id, headers = await new_business(hook_settings, hook_admin)
    broken = msgspec.structs.replace(
        hook_settings, amqp_url="amqp://guest:guest@127.0.0.1:1/"
    )
    async with http_client(broken) as client:
        response = await client.post(
            "/api/v3/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "events": ["*"]},
            headers=headers,
        )
        assert response.status == 503 and response.headers["Retry-After"] == "1"
    count = await hook_admin.fetchval(
        "SELECT count(*) FROM webhook_endpoints WHERE business_id = $1", business_id
    )
    assert count == 0
