"""The worker's reads and writes of the deliveries (shared/store/sql/0019_webhooks.sql).

Intake: one message (one event) becomes one delivery row per matching endpoint of its
business, in one transaction with the erasure's scrub, before the message is acked.

Sending: a sender claims one endpoint at a time with a session advisory lock keyed by
the endpoint's id (pg_try_advisory_lock: a held lock is skipped, never waited for), so
two senders, in one process or in several, never deliver to one endpoint at once, and
a sender that dies (SIGKILL) releases its claim with its session. While it holds the
claim it sends the endpoint's head delivery (its pending delivery of the lowest event
position), one at a time: a receiver sees the endpoint's events in order, and a
failing head waits for its retry without holding up any other endpoint.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

import asyncpg
import msgspec

from shared.config import Settings
from shared.personal_data import PERSONAL_FIELDS
from shared.webhook_rules import RetrySchedule, matches_any, next_attempt_at

CANDIDATES_MAX = 32
_LOCK_KEY = "hashtextextended('ledger webhook endpoint ' || $1::bigint, 0)"


class EventHeader(msgspec.Struct, frozen=True):
    """What the intake reads of an envelope (any event type, known or new)."""

    event_id: uuid.UUID
    type: str
    business_id: int
    stream_id: str
    position: int


class Endpoint(msgspec.Struct, frozen=True):
    id: int
    business_id: int
    url: str
    secret_sealed: bytes


class Head(msgspec.Struct, frozen=True):
    """The head delivery as read for one attempt. Its attempts and next_attempt_at
    identify that attempt: a retry or an enable while it is in flight changes them."""

    id: int
    event_id: uuid.UUID
    body: bytes
    attempts: int
    first_attempt_at: dt.datetime | None
    next_attempt_at: dt.datetime


async def queue_event(conn: asyncpg.Connection, event: EventHeader, body: bytes) -> int:
    """Queue `body` for each matching endpoint of the event's business that started
    before it (start_position, migration 0020: an event republished from before an
    endpoint was made is not queued after newer ones); a delivery already queued is
    left as it is. Then, for a client.erased event, scrub the client's stored
    bodies. Returns how many deliveries were new."""
    rows = await conn.fetch(
        "SELECT id, patterns FROM webhook_endpoints WHERE business_id = $1"
        " AND start_position < $2",
        event.business_id,
        event.position,
    )
    wanted = [row["id"] for row in rows if matches_any(row["patterns"], event.type)]
    added = 0
    if wanted:
        status: str = await conn.execute(
            "INSERT INTO webhook_deliveries (endpoint_id, business_id, event_id,"
            " event_type, event_position, stream_id, body)"
            " SELECT unnest($1::bigint[]), $2, $3, $4, $5, $6, $7"
            " ON CONFLICT (endpoint_id, event_id) DO NOTHING",
            wanted,
            event.business_id,
            event.event_id,
            event.type,
            event.position,
            event.stream_id,
            body,
        )
        added = int(status.rsplit(" ", 1)[1])
    if event.type == "client.erased":
        await scrub_client(conn, event.business_id, event.stream_id)
    return added


_body_decoder = msgspec.json.Decoder(dict[str, object])


def scrubbed(body: bytes) -> bytes:
    """The envelope with its payload's personal fields (those its type keeps sealed:
    a profile, a description, a reason) null; the rest as it was. A body that is not
    an envelope is returned as it is."""
    try:
        envelope = _body_decoder.decode(body)
    except msgspec.DecodeError:
        return body
    payload = envelope.get("payload")
    event_type = envelope.get("type")
    if not isinstance(payload, dict) or not isinstance(event_type, str):
        return body
    names = [name for name in PERSONAL_FIELDS.get(event_type, ()) if name in payload]
    if not names:
        return body
    envelope["payload"] = {**payload, **dict.fromkeys(names)}
    return msgspec.json.encode(envelope)


async def scrub_client(
    conn: asyncpg.Connection, business_id: int, stream_id: str
) -> None:
    """Null the personal fields in every stored delivery of the client's stream,
    delivered or pending, of every endpoint."""
    rows = await conn.fetch(
        "SELECT id, body FROM webhook_deliveries WHERE business_id = $1"
        " AND stream_id = $2",
        business_id,
        stream_id,
    )
    changed = [
        (row["id"], new)
        for row in rows
        if (new := scrubbed(row["body"])) != row["body"]
    ]
    if changed:
        await conn.executemany(
            "UPDATE webhook_deliveries SET body = $2 WHERE id = $1", changed
        )


async def claim_endpoint(conn: asyncpg.Connection) -> Endpoint | None:
    """An enabled endpoint whose head delivery is due, now claimed by this session
    (unlock with release_endpoint); None when every such endpoint is claimed.

    The candidates are the CANDIDATES_MAX endpoints whose heads have been due
    longest (then the lowest id): under a backlog of more due endpoints than that,
    an arbitrary 32 would be offered again and again and the rest would starve.
    Among them the order is shuffled, so that senders asking at once try different
    endpoints first instead of queueing on one lock after another."""
    rows = await conn.fetch(
        "SELECT e.id, e.business_id, e.url, e.secret_sealed FROM webhook_endpoints e"
        " CROSS JOIN LATERAL (SELECT d.next_attempt_at FROM webhook_deliveries d"
        " WHERE d.endpoint_id = e.id AND d.status = 'pending'"
        " ORDER BY d.event_position, d.id LIMIT 1) head"
        " WHERE e.enabled AND head.next_attempt_at <= now()"
        " ORDER BY head.next_attempt_at, e.id LIMIT $1",
        CANDIDATES_MAX,
    )
    candidates = list(rows)
    random.shuffle(candidates)
    for row in candidates:
        if await try_claim(conn, row["id"]):
            return Endpoint(**dict(row))
    return None


async def try_claim(conn: asyncpg.Connection, endpoint_id: int) -> bool:
    """Claim the endpoint for this session unless another session holds it."""
    claimed: bool = await conn.fetchval(
        f"SELECT pg_try_advisory_lock({_LOCK_KEY})", endpoint_id
    )
    return claimed


async def release_endpoint(conn: asyncpg.Connection, endpoint_id: int) -> None:
    await conn.execute(f"SELECT pg_advisory_unlock({_LOCK_KEY})", endpoint_id)


async def due_head(conn: asyncpg.Connection, endpoint_id: int) -> Head | None:
    """The endpoint's head delivery when it is due and the endpoint enabled (read
    again under the claim: another sender may have just delivered it)."""
    row = await conn.fetchrow(
        "SELECT d.id, d.event_id, d.body, d.attempts, d.first_attempt_at,"
        " d.next_attempt_at, d.next_attempt_at <= now() AS due"
        " FROM webhook_deliveries d"
        " JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled"
        " WHERE d.endpoint_id = $1 AND d.status = 'pending'"
        " ORDER BY d.event_position, d.id LIMIT 1",
        endpoint_id,
    )
    if row is None or not row["due"]:
        return None
    return Head(**{name: row[name] for name in Head.__struct_fields__})


def schedule(settings: Settings) -> RetrySchedule:
    return RetrySchedule(
        base_s=settings.webhook_retry_base_s,
        cap_s=settings.webhook_retry_cap_s,
        horizon_s=settings.webhook_retry_horizon_s,
    )


# An attempt's outcome is written only to the row it was made for: still pending,
# with the attempts and next_attempt_at read before it. A retry (attempts 0, due now)
# or an enable (due now, horizon afresh) that lands while the attempt is in flight
# changes them, and then its reset stands: the outcome is not written back over it,
# and the delivery goes out again (at least once, as after a crash).
_SAME_ATTEMPT = (
    "id = $1 AND status = 'pending' AND attempts = $2 AND next_attempt_at = $3"
)


async def record_success(
    conn: asyncpg.Connection,
    endpoint_id: int,
    head: Head,
    status_code: int | None,
    response: str,
) -> None:
    """The head was delivered: it leaves the queue (unless a retry or an enable came
    in meanwhile: _SAME_ATTEMPT), the endpoint's run of failures ends."""
    async with conn.transaction():
        await conn.execute(
            "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts"
            " + 1, first_attempt_at = coalesce(first_attempt_at, now()),"
            " last_attempt_at = now(), delivered_at = now(), last_status_code = $4,"
            f" last_error = NULL, last_response = $5 WHERE {_SAME_ATTEMPT}",
            head.id,
            head.attempts,
            head.next_attempt_at,
            status_code,
            response,
        )
        await conn.execute(
            "UPDATE webhook_endpoints SET failures_consecutive = 0 WHERE id = $1",
            endpoint_id,
        )


async def record_failure(
    conn: asyncpg.Connection,
    endpoint_id: int,
    head: Head,
    failure: tuple[int | None, str | None, str],
    settings: Settings,
) -> bool:
    """The head's attempt failed (`failure`: status, error, response): it waits for
    its next attempt, or gives up (`failed`) past the horizon; the endpoint counts one
    more failure in a row and is disabled at LEDGER_WEBHOOK_FAILURES_MAX. Neither is
    written when a retry or an enable came in meanwhile (_SAME_ATTEMPT). Returns
    whether the endpoint is still enabled."""
    now = dt.datetime.now(dt.UTC)
    first = head.first_attempt_at or now
    at = next_attempt_at(
        head.attempts + 1, first, now, schedule(settings), random.uniform(0.5, 1.0)
    )
    status_code, error, response = failure
    async with conn.transaction():
        written = await conn.fetchval(
            "UPDATE webhook_deliveries SET status = $4, attempts = attempts + 1,"
            " first_attempt_at = $5, last_attempt_at = $6, next_attempt_at = $7,"
            " last_status_code = $8, last_error = $9, last_response = $10"
            f" WHERE {_SAME_ATTEMPT} RETURNING true",
            head.id,
            head.attempts,
            head.next_attempt_at,
            "failed" if at is None else "pending",
            first,
            now,
            at or now,
            status_code,
            error,
            response,
        )
        if written is None:
            enabled = await conn.fetchval(
                "SELECT enabled FROM webhook_endpoints WHERE id = $1", endpoint_id
            )
            return bool(enabled)
        return await _count_failure(conn, endpoint_id, settings.webhook_failures_max)


async def _count_failure(
    conn: asyncpg.Connection, endpoint_id: int, failures_max: int
) -> bool:
    """One more failed attempt in a row; disabled at `failures_max`; still enabled?"""
    enabled: bool = await conn.fetchval(
        "UPDATE webhook_endpoints SET failures_consecutive ="
        " failures_consecutive + 1, enabled = enabled AND failures_consecutive + 1"
        " < $2, disabled_at = CASE WHEN enabled AND failures_consecutive + 1 >= $2"
        " THEN now() ELSE disabled_at END WHERE id = $1 RETURNING enabled",
        endpoint_id,
        failures_max,
    )
    return enabled
