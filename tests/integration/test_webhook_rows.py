"""The worker's writes to the delivery rows, against the real PostgreSQL with no
worker running (this module never starts the service): the test plays the sender,
reading a head and recording its outcome, with the owner's calls in between."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from services.cli.businesses import provision_business
from services.webhooks import deliveries, endpoints, retention
from shared.config import Settings


async def new_endpoint(settings: Settings, admin: asyncpg.Pool) -> tuple[int, int]:
    """A business and an endpoint of it that takes every event: their ids."""
    created = await provision_business(settings, f"Rows {uuid.uuid4().hex[:8]}")
    business_id = int(str(created["business_id"]))
    endpoint_id: int = await admin.fetchval(
        "INSERT INTO webhook_endpoints (business_id, url, patterns, secret_sealed)"
        " VALUES ($1, 'http://127.0.0.1:9/hook', '{*}', '\\x00') RETURNING id",
        business_id,
    )
    return business_id, endpoint_id


def header(business_id: int, position: int) -> deliveries.EventHeader:
    return deliveries.EventHeader(
        event_id=uuid.uuid4(),
        type="client.created",
        business_id=business_id,
        stream_id=f"client-{uuid.uuid4().hex[:8]}",
        position=position,
    )


async def delivery_row(conn: asyncpg.Connection, endpoint_id: int) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT status, attempts, first_attempt_at, next_attempt_at, last_error,"
        " (SELECT failures_consecutive FROM webhook_endpoints WHERE id = $1)"
        " AS failures FROM webhook_deliveries WHERE endpoint_id = $1",
        endpoint_id,
    )
    assert row is not None
    return row


async def failed_once(
    conn: asyncpg.Connection, settings: Settings, endpoint_id: int
) -> deliveries.Head:
    """Record one failed attempt at the endpoint's head, make it due again, and
    return the head as a sender reads it for its second attempt."""
    head = await deliveries.due_head(conn, endpoint_id)
    assert head is not None and head.attempts == 0
    failure = (500, "HTTP 500", "")
    assert await deliveries.record_failure(conn, endpoint_id, head, failure, settings)
    row = await delivery_row(conn, endpoint_id)
    assert (row["attempts"], row["last_error"], row["failures"]) == (1, "HTTP 500", 1)
    await conn.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE endpoint_id = $1",
        endpoint_id,
    )
    again = await deliveries.due_head(conn, endpoint_id)
    assert again is not None and again.attempts == 1
    return again


async def test_an_attempt_in_flight_does_not_undo_a_retry(
    hook_settings: Settings, hook_admin: asyncpg.Pool
) -> None:
    """A head fails once (written), is read for a second attempt, and the owner
    retries it meanwhile: neither that attempt's failure nor a success is written
    over the retry, which stays pending with 0 attempts, due when the retry said."""
    business_id, endpoint_id = await new_endpoint(hook_settings, hook_admin)
    async with hook_admin.acquire() as conn:
        await deliveries.queue_event(conn, header(business_id, 1), b"{}")
        head = await failed_once(conn, hook_settings, endpoint_id)
        retried = await endpoints.retry(hook_admin, endpoint_id, head.id)
        assert retried is not None and retried.attempts == 0
        failure = (503, "HTTP 503", "")
        await deliveries.record_failure(conn, endpoint_id, head, failure, hook_settings)
        await deliveries.record_success(conn, endpoint_id, head, 200, "ok")
        row = await delivery_row(conn, endpoint_id)
    assert (row["status"], row["attempts"], row["first_attempt_at"]) == (
        "pending",
        0,
        None,
    )
    assert (row["next_attempt_at"], row["last_error"]) == (
        retried.next_attempt_at,
        "HTTP 500",
    )


async def test_an_attempt_in_flight_does_not_undo_an_enable(
    hook_settings: Settings, hook_admin: asyncpg.Pool
) -> None:
    """A head fails once (written), is read for a second attempt, and the owner
    enables the endpoint meanwhile: that attempt's failure is not written, so the
    enable's reset stands (horizon afresh: no first attempt; due now; no failures
    in a row) and the endpoint stays enabled."""
    business_id, endpoint_id = await new_endpoint(hook_settings, hook_admin)
    async with hook_admin.acquire() as conn:
        await deliveries.queue_event(conn, header(business_id, 1), b"{}")
        head = await failed_once(conn, hook_settings, endpoint_id)
        enabled = await endpoints.enable(hook_admin, business_id, endpoint_id)
        assert enabled is not None and enabled.failures_consecutive == 0
        reset = await delivery_row(conn, endpoint_id)
        failure = (503, "HTTP 503", "")
        assert await deliveries.record_failure(
            conn, endpoint_id, head, failure, hook_settings
        )
        row = await delivery_row(conn, endpoint_id)
    assert (row["status"], row["attempts"], row["first_attempt_at"]) == (
        "pending",
        1,
        None,
    )
    assert (row["next_attempt_at"], row["last_error"], row["failures"]) == (
        reset["next_attempt_at"],
        "HTTP 500",
        0,
    )


async def test_the_longest_due_endpoint_is_claimed_past_a_backlog(
    hook_settings: Settings, hook_admin: asyncpg.Pool
) -> None:
    """CANDIDATES_MAX endpoints due for a minute, each claimed by another sender,
    and one more made after them, due for an hour and free: a sender claims that
    one (an unordered candidate list offered only the claimed ones, forever)."""
    business_id, _ = await new_endpoint(hook_settings, hook_admin)
    await hook_admin.execute(
        "INSERT INTO webhook_endpoints (business_id, url, patterns, secret_sealed)"
        " SELECT $1, 'http://127.0.0.1:9/hook', '{*}', '\\x00'"
        " FROM generate_series(1, $2)",
        business_id,
        deliveries.CANDIDATES_MAX,
    )
    _, oldest = await new_endpoint(hook_settings, hook_admin)
    await hook_admin.execute(
        "INSERT INTO webhook_deliveries (endpoint_id, business_id, event_id,"
        " event_type, event_position, stream_id, body, next_attempt_at)"
        " SELECT id, business_id, gen_random_uuid(), 'client.created', 1, 'client-x',"
        " '\\x00', now() - CASE WHEN id = $2 THEN interval '1 hour'"
        " ELSE interval '1 minute' END FROM webhook_endpoints"
        " WHERE business_id = $1 OR id = $2",
        business_id,
        oldest,
    )
    others = await hook_admin.fetch(
        "SELECT id FROM webhook_endpoints WHERE id <> $1", oldest
    )
    async with hook_admin.acquire() as blocker, hook_admin.acquire() as conn:
        for row in others:
            assert await deliveries.try_claim(blocker, row["id"])
        try:
            claimed = await deliveries.claim_endpoint(conn)
            assert claimed is not None and claimed.id == oldest
            await deliveries.release_endpoint(conn, oldest)
        finally:
            await blocker.execute("SELECT pg_advisory_unlock_all()")


async def test_the_intake_queues_only_events_after_the_endpoint_started(
    hook_settings: Settings, hook_admin: asyncpg.Pool
) -> None:
    """An endpoint that started after position 100 is fed envelopes at 99 and 100
    (a relay republishing events from before it was made) and at 101: only the
    event at 101 is queued for it."""
    business_id, endpoint_id = await new_endpoint(hook_settings, hook_admin)
    await hook_admin.execute(
        "UPDATE webhook_endpoints SET start_position = 100 WHERE id = $1", endpoint_id
    )
    async with hook_admin.acquire() as conn:
        added = [
            await deliveries.queue_event(conn, header(business_id, position), b"{}")
            for position in (99, 100, 101)
        ]
        positions = await conn.fetch(
            "SELECT event_position FROM webhook_deliveries WHERE endpoint_id = $1",
            endpoint_id,
        )
    assert added == [0, 0, 1]
    assert [row["event_position"] for row in positions] == [101]


async def test_the_sweep_deletes_settled_deliveries_past_retention_in_batches(
    hook_settings: Settings, hook_admin: asyncpg.Pool
) -> None:
    """Three deliveries delivered 8 days ago and one failed 8 days ago go, two per
    batch (one batch a sweep: 2, 2, then 0); one pending since 8 days ago, one
    delivered 6 days ago and one failed an hour ago stay, with a 7-day retention."""
    business_id, endpoint_id = await new_endpoint(hook_settings, hook_admin)
    days_8, days_6 = dt.timedelta(days=8), dt.timedelta(days=6)
    rows = [
        ("delivered", days_8, None),
        ("delivered", days_8, None),
        ("delivered", days_8, None),
        ("failed", None, days_8),
        ("pending", None, days_8),
        ("delivered", days_6, None),
        ("failed", None, dt.timedelta(hours=1)),
    ]
    await hook_admin.executemany(
        "INSERT INTO webhook_deliveries (endpoint_id, business_id, event_id,"
        " event_type, event_position, stream_id, body, status, delivered_at,"
        " last_attempt_at, created_at) VALUES ($1, $2, gen_random_uuid(),"
        " 'client.created', $3, 'client-x', '\\x00', $4, now() - $5::interval,"
        " now() - $6::interval, now() - interval '9 days')",
        [
            (endpoint_id, business_id, position, status, delivered, attempted)
            for position, (status, delivered, attempted) in enumerate(rows)
        ],
    )
    swept = [
        await retention.sweep(hook_admin, 7, batch_max=2, batches_max=1)
        for _ in range(3)
    ]
    kept = await hook_admin.fetch(
        "SELECT event_position FROM webhook_deliveries WHERE endpoint_id = $1"
        " ORDER BY event_position",
        endpoint_id,
    )
    assert swept == [2, 2, 0]
    assert [row["event_position"] for row in kept] == [4, 5, 6]
    assert await retention.sweep(hook_admin, 7) == 0
