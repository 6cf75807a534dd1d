"""The API's reads and writes of webhook endpoints and their delivery log (the
tables of shared/store/sql/0019_webhooks.sql). Every statement names the business:
another business's endpoint is not found."""

from __future__ import annotations

import asyncpg

from services.webhooks.bodies import (
    DeliveryBody,
    DeliveryPageBody,
    WebhookBody,
    WebhookInput,
)

_ENDPOINT = (
    "id, url, patterns, enabled, failures_consecutive, created_at, disabled_at,"
    " secret_rotated_at"
)
_DELIVERY = (
    "id, event_id, event_type, event_position, status, attempts, last_status_code,"
    " last_error, last_response, created_at, first_attempt_at, last_attempt_at,"
    " delivered_at,"
    " CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at"
)


def endpoint_body(row: asyncpg.Record) -> WebhookBody:
    return WebhookBody(
        id=row["id"],
        url=row["url"],
        events=list(row["patterns"]),
        enabled=row["enabled"],
        failures_consecutive=row["failures_consecutive"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
        secret_rotated_at=row["secret_rotated_at"],
    )


def delivery_body(row: asyncpg.Record) -> DeliveryBody:
    return DeliveryBody(**{**dict(row), "event_id": str(row["event_id"])})


async def lock_business(conn: asyncpg.Connection, business_id: int) -> int:
    """Take the business's webhook lock for the transaction (creations take turns,
    so the count bound holds); returns its endpoint count."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('ledger webhooks ' || $1, 0))",
        str(business_id),
    )
    count: int = await conn.fetchval(
        "SELECT count(*) FROM webhook_endpoints WHERE business_id = $1", business_id
    )
    return count


async def next_endpoint_id(conn: asyncpg.Connection) -> int:
    """The new endpoint's id, before its row (its sealed secret is bound to it)."""
    value: int = await conn.fetchval(
        "SELECT nextval(pg_get_serial_sequence('webhook_endpoints', 'id'))"
    )
    return value


async def store_position(conn: asyncpg.Connection) -> int:
    """The store's last committed position (0: no event yet). Read after the queue
    is bound, it is a new endpoint's start_position (migration 0020)."""
    position: int = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
    return position


async def insert(
    conn: asyncpg.Connection,
    endpoint_id: int,
    business_id: int,
    new: WebhookInput,
    sealed: bytes,
) -> WebhookBody:
    """The endpoint, starting after the store's last event (read now: the caller
    has bound the queue)."""
    row = await conn.fetchrow(
        "INSERT INTO webhook_endpoints (id, business_id, url, patterns, secret_sealed,"
        f" start_position) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_ENDPOINT}",
        endpoint_id,
        business_id,
        new.url,
        new.events,
        sealed,
        await store_position(conn),
    )
    assert row is not None
    return endpoint_body(row)


async def listed(pool: asyncpg.Pool, business_id: int) -> list[WebhookBody]:
    rows = await pool.fetch(
        f"SELECT {_ENDPOINT} FROM webhook_endpoints WHERE business_id = $1 ORDER BY id",
        business_id,
    )
    return [endpoint_body(row) for row in rows]


async def one(
    conn: asyncpg.Pool | asyncpg.Connection, business_id: int, endpoint_id: int
) -> WebhookBody | None:
    row = await conn.fetchrow(
        f"SELECT {_ENDPOINT} FROM webhook_endpoints WHERE business_id = $1 AND id = $2",
        business_id,
        endpoint_id,
    )
    return None if row is None else endpoint_body(row)


async def delete(pool: asyncpg.Pool, business_id: int, endpoint_id: int) -> bool:
    """Delete the endpoint and (cascade) its deliveries; False when not found."""
    status: str = await pool.execute(
        "DELETE FROM webhook_endpoints WHERE business_id = $1 AND id = $2",
        business_id,
        endpoint_id,
    )
    return status == "DELETE 1"


async def enable(
    pool: asyncpg.Pool, business_id: int, endpoint_id: int
) -> WebhookBody | None:
    """Enable the endpoint; its pending deliveries are due now, their horizon
    counted afresh (their first attempt forgotten), in their order."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE webhook_endpoints SET enabled = true, failures_consecutive = 0,"
            " disabled_at = NULL WHERE business_id = $1 AND id = $2"
            f" RETURNING {_ENDPOINT}",
            business_id,
            endpoint_id,
        )
        if row is None:
            return None
        await conn.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = now(),"
            " first_attempt_at = NULL WHERE endpoint_id = $1 AND status = 'pending'",
            endpoint_id,
        )
    return endpoint_body(row)


async def rotate(
    pool: asyncpg.Pool, business_id: int, endpoint_id: int, sealed: bytes
) -> WebhookBody | None:
    row = await pool.fetchrow(
        "UPDATE webhook_endpoints SET secret_sealed = $3, secret_rotated_at = now()"
        f" WHERE business_id = $1 AND id = $2 RETURNING {_ENDPOINT}",
        business_id,
        endpoint_id,
        sealed,
    )
    return None if row is None else endpoint_body(row)


async def deliveries(
    pool: asyncpg.Pool, endpoint_id: int, before: int | None, limit: int
) -> DeliveryPageBody:
    """A page of the endpoint's deliveries, newest (highest id) first, below
    `before` when given."""
    rows = await pool.fetch(
        f"SELECT {_DELIVERY} FROM webhook_deliveries WHERE endpoint_id = $1"
        " AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        endpoint_id,
        before,
        limit + 1,
    )
    page = [delivery_body(row) for row in rows[:limit]]
    more = len(rows) > limit
    return DeliveryPageBody(data=page, next_before=page[-1].id if more else None)


async def retry(
    pool: asyncpg.Pool, endpoint_id: int, delivery_id: int
) -> DeliveryBody | None:
    """Queue the delivery again, due now, its attempts and horizon counted afresh;
    it goes out in its position among the endpoint's pending deliveries."""
    row = await pool.fetchrow(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(),"
        " attempts = 0, first_attempt_at = NULL, delivered_at = NULL"
        f" WHERE endpoint_id = $1 AND id = $2 RETURNING {_DELIVERY}",
        endpoint_id,
        delivery_id,
    )
    return None if row is None else delivery_body(row)
