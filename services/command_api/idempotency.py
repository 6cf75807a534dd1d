"""Idempotency-Key, for every POST: a retry gets the first answer and writes nothing.

The commands and the import share each step:
- request_claim(): the key, and a hash of what the request means (the same key with
  another meaning is a 422, never a second effect);
- in_flight(): one request per key at a time in the service (a second: 409), a
  claim that ends with its process (services/http/session_locks.py);
- stored_responses(), replay() and replayed(): what a key already answered (the
  appender looks its batch's keys up with its other reads: batch_reads.py);
- store_responses(): the answer, kept in the transaction of its events (commit.py), so
  a key is stored exactly when its effect is;
- mark_accepted(): the answer went out as 202 (not yet visible), so a retry says 202.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import asyncpg
import msgspec
from aiohttp import web

from services.command_api.submissions import IdempotencyClaim, Result, Submission
from services.http.edge import POOL, printable
from services.http.session_locks import SESSION_LOCKS, lock_key
from shared.errors import (
    ConcurrencyConflict,
    IdempotencyConflict,
    IdempotencyInProgress,
    invalid,
)
from shared.personal_data import nulled_answer

IN_FLIGHT = web.AppKey("idempotency_in_flight", set[tuple[int, str]])
KEY_LENGTH_MAX = 255


def request_claim(
    request: web.Request, meaning: Sequence[bytes]
) -> IdempotencyClaim | None:
    """The request's Idempotency-Key, if any, with a hash of what the request means
    (the parts are length-prefixed, so no two different lists hash alike)."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not printable(key.strip()) or len(key) > KEY_LENGTH_MAX:
        raise invalid(
            "Idempotency-Key",
            "The Idempotency-Key must be 1 to 255 printable ASCII characters.",
        )
    digest = hashlib.sha256()
    for part in meaning:
        digest.update(len(part).to_bytes(8, "big") + part)
    return IdempotencyClaim(key=key, request_hash=digest.hexdigest())


@asynccontextmanager
async def in_flight(
    request: web.Request, business_id: int, claim: IdempotencyClaim | None
) -> AsyncIterator[None]:
    """Hold the key while the request runs: a second request with it meanwhile, in
    this process or another, is refused (409), since it could neither replay an
    answer nor safely run again. The claim is an advisory lock on the process's
    claims session (services/http/session_locks.py says why): it ends when the
    request does, or when its process dies. A second request in the same process is
    refused by the local set first (a session's locks are re-entrant).

    A key held elsewhere whose answer is already stored goes on without the claim:
    its holder has committed and answered, and only its unlock (sent after the
    answer, with the next claims batch) is still on its way, so an immediate retry at
    another process would get a spurious 409. Going on, it can only replay the stored
    answer (the appender and the import look the key up first; its unique row stops
    a second effect). This costs a query on the 409 path alone; awaiting each unlock
    before answering would instead add a claims round trip (behind the batch in
    flight) to every keyed POST's answer."""
    if claim is None:
        yield
        return
    slot, held = (business_id, claim.key), request.app[IN_FLIGHT]
    if slot in held:
        raise IdempotencyInProgress()
    held.add(slot)
    try:
        locks, key = request.app[SESSION_LOCKS], lock_key("idempotency", *slot)
        locked = await locks.try_lock(key)
        if not locked and not await _answered(request.app[POOL], slot):
            raise IdempotencyInProgress()
        try:
            yield
        finally:
            if locked:
                locks.unlock(key)
    finally:
        held.discard(slot)


async def _answered(pool: asyncpg.Pool, slot: tuple[int, str]) -> bool:
    """Whether an answer is stored for the (business id, key)."""
    stored: bool = await pool.fetchval(
        "SELECT EXISTS (SELECT FROM idempotency_keys"
        " WHERE business_id = $1 AND key = $2)",
        *slot,
    )
    return stored


class StoredResponse(msgspec.Struct, frozen=True):
    request_hash: str
    result: Result


# An index lookup per key in any plan (batch_reads.py says why).
STORED = """
SELECT k.business_id, k.key, k.request_hash, k.status, k.body, k.position
FROM unnest($1::bigint[], $2::text[]) AS w(business_id, key),
LATERAL (SELECT * FROM idempotency_keys k
         WHERE k.business_id = w.business_id AND k.key = w.key OFFSET 0) AS k
"""


async def stored_responses(
    conn: asyncpg.Connection | asyncpg.Pool, keys: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], StoredResponse]:
    """The responses stored for these (business id, key) pairs, in one query."""
    if not keys:
        return {}
    rows = await conn.fetch(
        STORED,
        [business for business, _ in keys],
        [key for _, key in keys],
    )
    return {
        (row["business_id"], row["key"]): stored_response(
            row["request_hash"], row["status"], row["body"], row["position"]
        )
        for row in rows
    }


def stored_response(
    request_hash: str, status: int, body: bytes, position: int
) -> StoredResponse:
    """An idempotency_keys row's answer, to replay (its position 0: no events)."""
    return StoredResponse(
        request_hash,
        Result(
            status=status, body=bytes(body), position=position or None, replayed=True
        ),
    )


def replay(stored: StoredResponse | None, claim: IdempotencyClaim) -> Result | None:
    """The first answer, to send again; None for a key not used yet. A key used with
    another request raises IdempotencyConflict."""
    if stored is None:
        return None
    if stored.request_hash != claim.request_hash:
        raise IdempotencyConflict()
    return stored.result


async def replayed(
    conn: asyncpg.Connection | asyncpg.Pool, business_id: int, claim: IdempotencyClaim
) -> Result | None:
    """replay() for one request, looked up on its own."""
    key = (business_id, claim.key)
    return replay((await stored_responses(conn, [key])).get(key), claim)


class Answer(msgspec.Struct, frozen=True):
    """What one request answers, kept when it carries a key."""

    business_id: int
    claim: IdempotencyClaim | None
    result: Result
    stream_id: str | None = None  # the client's stream, which an erasure looks for
    sealed: bool = False  # its client has a key (its personal fields are sealed)


class KeyCommittedConcurrently(ConcurrencyConflict):
    """Another request with the key committed first (another process, whose claim
    of the key was lost with its claims connection while it ran)."""

    def __init__(self) -> None:
        super().__init__("idempotency key committed concurrently")


# An answer of a client with a key is kept as it is while the key is there, and with
# its personal fields null once it is gone: the key's row is locked (KEY SHARE) until
# the COMMIT, so an erasure (erasures.py) deletes it only after this answer is
# visible to its next statement, which nulls it; and an erasure that committed first
# leaves no row to lock: `key_gone` says so, and store_responses nulls that answer
# itself (rare: only then is a body decoded again). The LEFT JOIN reads the locking
# CTE whole, so every row it names is locked.
_STORE = """
WITH answers AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::integer[],
                         $5::bytea[], $6::bigint[], $7::text[], $8::boolean[])
         AS a(business_id, key, request_hash, status, body, position, stream_id,
              sealed)
), held AS (
    SELECT k.business_id, k.stream_id FROM client_keys k
    WHERE (k.business_id, k.stream_id) IN
          (SELECT business_id, stream_id FROM answers WHERE sealed)
    FOR KEY SHARE
), kept AS (
    INSERT INTO idempotency_keys
        (business_id, key, request_hash, status, body, position, stream_id)
    SELECT business_id, key, request_hash, status, body, position, stream_id
    FROM answers
    ON CONFLICT DO NOTHING RETURNING business_id, key, stream_id
)
SELECT k.key, a.sealed AND h.stream_id IS NULL AS key_gone
FROM kept k
JOIN answers a ON a.business_id = k.business_id AND a.key = k.key
LEFT JOIN held h ON h.business_id = k.business_id AND h.stream_id = k.stream_id
"""
_NULLED = "UPDATE idempotency_keys SET body = $3 WHERE business_id = $1 AND key = $2"


async def store_responses(conn: asyncpg.Connection, answers: Sequence[Answer]) -> None:
    """Keep each keyed answer, inside the transaction of its events; an answer of a
    client whose key an erasure destroyed meanwhile is kept with its personal fields
    null (_STORE)."""
    keyed = [(answer, answer.claim) for answer in answers if answer.claim is not None]
    if not keyed:
        return
    rows = await conn.fetch(
        _STORE,
        [answer.business_id for answer, _ in keyed],
        [claim.key for _, claim in keyed],
        [claim.request_hash for _, claim in keyed],
        [answer.result.status for answer, _ in keyed],
        [answer.result.body for answer, _ in keyed],
        [answer.result.position or 0 for answer, _ in keyed],
        [answer.stream_id for answer, _ in keyed],
        [answer.sealed for answer, _ in keyed],
    )
    if len(rows) != len(keyed):
        raise KeyCommittedConcurrently()
    gone = {row["key"] for row in rows if row["key_gone"]}
    for answer, claim in keyed:
        if claim.key in gone:
            body = nulled_answer(answer.result.body)
            await conn.execute(_NULLED, answer.business_id, claim.key, body)


async def mark_accepted(pool: asyncpg.Pool, business_id: int, key: str) -> None:
    """The first answer to a keyed request was 202 (not yet visible): store that, so a
    retry replays the same status as well as the same body."""
    await pool.execute(
        "UPDATE idempotency_keys SET status = 202 WHERE business_id = $1 AND key = $2",
        business_id,
        key,
    )


def settle_replays(
    batch: list[Submission], stored: Mapping[tuple[int, str], StoredResponse]
) -> list[Submission]:
    """Answer the submissions whose Idempotency-Key already committed (a key used
    with another request: IdempotencyConflict); returns the others, to decide."""
    live: list[Submission] = []
    for submission in batch:
        claim, found = submission.idempotency, None
        try:
            if claim is not None:
                key = (submission.command.business_id, claim.key)
                found = replay(stored.get(key), claim)
        except IdempotencyConflict as conflict:
            submission.fail(conflict)
            continue
        if found is None:
            live.append(submission)
        else:
            submission.future.set_result(found)
    return live
