"""What a delivery attempt does with odd receivers, and what an endpoint's owner can
do to its deliveries: redirects, big answers, slow answers, erasure, a rotated
secret and a retried delivery (in process, real PostgreSQL, RabbitMQ, hook_receiver)."""

from __future__ import annotations

import time

import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from services.webhooks import sender
from services.webhooks.addresses import check_url_addresses
from shared.client import verify_signature
from shared.config import Settings
from shared.errors import ValidationFailed
from shared.events import PROFILE_FIELDS
from tests.integration.scenarios import wait_until
from tests.integration.webhook_calls import (
    Headers,
    call,
    count_at_least,
    endpoint,
    new_business,
    new_client,
)
from tests.integration.webhook_receiver import Receiver


async def last_attempt(hook_admin: asyncpg.Pool, endpoint_id: object) -> asyncpg.Record:
    row = await hook_admin.fetchrow(
        "SELECT status, attempts, last_status_code, last_error, last_response"
        " FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY id LIMIT 1",
        endpoint_id,
    )
    assert row is not None
    return row


async def one_attempt_made(
    hook_api: TestClient,
    headers: Headers,
    hook_admin: asyncpg.Pool,
    endpoint_id: object,
) -> asyncpg.Record:
    async def attempted() -> bool:
        count = await hook_admin.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1"
            " AND attempts >= 1",
            endpoint_id,
        )
        return bool(count)

    await wait_until(attempted, "an attempt")
    return await last_attempt(hook_admin, endpoint_id)


async def test_a_redirect_is_a_failure_and_is_not_followed(
    hook_api: TestClient,
    hook_settings: Settings,
    hook_admin: asyncpg.Pool,
    hook_receiver: Receiver,
) -> None:
    """The receiver answers every attempt 302 to /elsewhere: each attempt fails with
    HTTP 302 and /elsewhere is never asked."""
    _, headers = await new_business(hook_settings, hook_admin)
    hook_receiver.status = 302  # every attempt (a 200 retry would hide the 302)
    created = await endpoint(hook_api, headers, hook_receiver.url, ["client.created"])
    await new_client(hook_api, headers, "Redirect Ltd")
    row = await one_attempt_made(hook_api, headers, hook_admin, created["id"])
    assert (row["last_status_code"], row["last_error"]) == (302, "HTTP 302")
    assert hook_receiver.redirected == 0


async def test_a_big_answer_is_read_only_up_to_the_bound(
    hook_api: TestClient,
    hook_settings: Settings,
    hook_admin: asyncpg.Pool,
    hook_receiver: Receiver,
) -> None:
    """The receiver answers 200 with 1 MiB: the delivery succeeds and only the
    first 64 bytes (LEDGER_WEBHOOK_RESPONSE_BYTES_MAX) are kept, and shown in the
    delivery log."""
    _, headers = await new_business(hook_settings, hook_admin)
    hook_receiver.answer = b"x" * (1024 * 1024)
    created = await endpoint(hook_api, headers, hook_receiver.url, ["client.created"])
    await new_client(hook_api, headers, "Big Ltd")

    async def delivered() -> bool:
        status = await hook_admin.fetchval(
            "SELECT status FROM webhook_deliveries WHERE endpoint_id = $1",
            created["id"],
        )
        return bool(status == "delivered")

    await wait_until(delivered, "the delivery")
    row = await last_attempt(hook_admin, created["id"])
    assert (row["last_status_code"], row["last_response"]) == (200, "x" * 64)
    path = f"/api/v3/webhooks/{created['id']}/deliveries"
    status, page = await call(hook_api, "GET", path, headers)
    [shown] = page["data"]  # type: ignore[misc]
    assert (status, shown["last_status_code"], shown["last_response"]) == (
        200,
        200,
        "x" * 64,
    )


async def test_a_slow_receiver_times_out(
    hook_api: TestClient,
    hook_settings: Settings,
    hook_admin: asyncpg.Pool,
    hook_receiver: Receiver,
) -> None:
    """The receiver takes 1.5 s with a 1 s timeout: the attempt fails as a timeout,
    with no status code."""
    _, headers = await new_business(hook_settings, hook_admin)
    hook_receiver.delay_s = 1.5
    created = await endpoint(hook_api, headers, hook_receiver.url, ["client.created"])
    await new_client(hook_api, headers, "Slow Ltd")
    row = await one_attempt_made(hook_api, headers, hook_admin, created["id"])
    assert row["last_status_code"] is None
    assert row["last_error"] == "timeout after 1.0 s"


async def test_erasure_scrubs_stored_deliveries_and_a_rotated_secret_signs(
    hook_api: TestClient,
    hook_settings: Settings,
    hook_admin: asyncpg.Pool,
    hook_receiver: Receiver,
) -> None:
    """A client's delivered client.created holds its profile; after the secret is
    rotated and the client erased, every stored body of that client has its profile
    fields null, the client.erased delivery verifies with the new secret only, and a
    retried delivery is sent again with the same event id."""
    _, headers = await new_business(hook_settings, hook_admin)
    created = await endpoint(hook_api, headers, hook_receiver.url, ["client.*"])
    client_id = await new_client(hook_api, headers, "Erased Ltd")
    await wait_until(lambda: count_at_least(hook_receiver, 1), "client.created")
    assert (
        msgspec.json.decode(hook_receiver.requests[0].body)["payload"]["first_name"]
        == "Ama"
    )
    path = f"/api/v3/webhooks/{created['id']}"
    status, rotated = await call(hook_api, "POST", path + "/rotate-secret", headers)
    assert status == 200 and rotated["secret"] != created["secret"]
    status, _ = await call(
        hook_api, "POST", f"/api/v3/clients/{client_id}/erase", headers, {}
    )
    assert status in (200, 201)
    await wait_until(lambda: count_at_least(hook_receiver, 2), "client.erased")
    erased = hook_receiver.requests[1]
    assert msgspec.json.decode(erased.body)["type"] == "client.erased"
    new, old = str(rotated["secret"]), str(created["secret"])
    assert verify_signature(new, erased.signature, erased.body, time.time())
    assert not verify_signature(old, erased.signature, erased.body, time.time())
    bodies = await hook_admin.fetch(
        "SELECT body FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY id",
        created["id"],
    )
    first = msgspec.json.decode(bodies[0]["body"])["payload"]
    assert {name: first.get(name, None) for name in PROFILE_FIELDS} == dict.fromkeys(
        PROFILE_FIELDS
    )
    first_id = await hook_admin.fetchval(
        "SELECT min(id) FROM webhook_deliveries WHERE endpoint_id = $1", created["id"]
    )
    status, retried = await call(
        hook_api, "POST", f"{path}/deliveries/{first_id}/retry", headers
    )
    assert status == 202 and retried["status"] == "pending"
    await wait_until(lambda: count_at_least(hook_receiver, 3), "the retried delivery")
    assert hook_receiver.requests[2].event_id == hook_receiver.requests[0].event_id


async def test_a_host_dns_cannot_look_up_fails_the_attempt_and_the_check(
    hook_settings: Settings,
) -> None:
    """A host with a 64-character label (the IDNA codec's UnicodeError, a
    ValueError) fails one attempt with an error, private addresses allowed or not,
    and is a 422 on `url` when the API resolves it, never an exception."""
    url = "http://" + "a" * 64 + ".example.com/hook"
    strict = msgspec.structs.replace(hook_settings, webhook_allow_private_addresses=0)
    for settings in (hook_settings, strict):
        async with sender.client_session(settings) as session:
            result = await sender.attempt(session, settings, url, {}, b"{}")
        assert (result.ok, result.status_code) == (False, None)
        assert result.error is not None and result.error.startswith("UnicodeError: ")
    with pytest.raises(ValidationFailed) as refused:
        await check_url_addresses(url, 80)
    assert list(refused.value.errors) == ["url"]


async def test_a_refusal_names_the_host_never_what_it_resolved_to(
    hook_settings: Settings,
) -> None:
    """With private addresses refused, an attempt to localhost fails with an error
    naming the host only, and checking the URL is a 422 that says the host resolves
    to a refused address without saying which (the addresses go to the log)."""
    strict = msgspec.structs.replace(hook_settings, webhook_allow_private_addresses=0)
    url = "http://localhost:9/hook"
    async with sender.client_session(strict) as session:
        result = await sender.attempt(session, strict, url, {}, b"{}")
    assert (result.ok, result.status_code, result.error) == (
        False,
        None,
        "address refused: localhost resolves to a refused address",
    )
    with pytest.raises(ValidationFailed) as refused:
        await check_url_addresses(url, 9)
    assert refused.value.errors == {
        "url": ["The URL's host resolves to a refused address."]
    }
