"""What the audit-tampering tests share: the attacker's moves on the events table (as
the superuser, with the append-only trigger switched off) and the test's own oracle of
the hashes `ledger audit verify` must recompute.

The oracle recomputes a stream's HMACs from the rows as stored, with the primitives of
shared/hash_chain.py, independently of services/audit/chains.py: a hash difference's
`expected` is what the real key gives over the stored content and the previous stored
hash, its `found` the stored hash.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import msgspec

from services.audit.folds import line_digest
from services.audit.report import Difference
from shared.hash_chain import GENESIS, event_hash
from shared.store.event_rows import SELECT_EVENTS, stored_hashed_content

_json = msgspec.json.Decoder(dict[str, Any])


async def stream_rows(admin: asyncpg.Connection, stream_id: str) -> list[Any]:
    """A stream's rows as stored, in version order (the audit's order)."""
    rows: list[Any] = await admin.fetch(
        SELECT_EVENTS + "WHERE stream_id = $1 ORDER BY version", stream_id
    )
    return rows


def hash_differences(key: bytes, rows: list[Any]) -> list[Difference]:
    """The `hash` difference verify must report for each row whose stored hash is not
    the real key's HMAC over its stored content and the previous stored hash."""
    differences, previous = [], GENESIS
    for row in rows:
        recomputed = event_hash(key, previous, stored_hashed_content(row))
        if recomputed != row["hash"]:
            differences.append(at(row, "hash", "hash", recomputed, row["hash"]))
        previous = row["hash"]
    return differences


def at(row: Any, kind: str, field: str, expected: Any, found: Any) -> Difference:
    """A difference at one stored event (its business, stream, position, version)."""
    return Difference(
        kind=kind,
        business_id=row["business_id"],
        stream_id=row["stream_id"],
        position=row["position"],
        version=row["version"],
        field=field,
        expected=expected,
        found=found,
    )


async def rewrite_payload(
    admin: asyncpg.Connection, position: int, change: Callable[[dict[str, Any]], None]
) -> None:
    """Change one stored payload in place (its hash is left as it was)."""
    payload = _json.decode(
        await admin.fetchval(
            "SELECT payload::text FROM events WHERE position = $1", position
        )
    )
    change(payload)
    async with admin.transaction():
        await admin.execute("SET LOCAL session_replication_role = replica")
        await admin.execute(
            "UPDATE events SET payload = $2::text::jsonb WHERE position = $1",
            position,
            msgspec.json.encode(payload).decode(),
        )


async def rechain(
    admin: asyncpg.Connection, stream_id: str, key: bytes, key_id: str | None = None
) -> None:
    """Re-hash a whole stream, in version order, with `key` (and relabel its rows to
    `key_id` when given): what a forger with database access does to make a changed
    stream chain again."""
    async with admin.transaction():
        await admin.execute("SET LOCAL session_replication_role = replica")
        if key_id is not None:
            await admin.execute(
                "UPDATE events SET key_id = $2 WHERE stream_id = $1", stream_id, key_id
            )
        previous = GENESIS
        for row in await stream_rows(admin, stream_id):
            previous = event_hash(key, previous, stored_hashed_content(row))
            await admin.execute(
                "UPDATE events SET hash = $2 WHERE position = $1",
                row["position"],
                previous,
            )


async def insert_forged(
    admin: asyncpg.Connection, template: Any, version: int, key: bytes, **payload: Any
) -> None:
    """Insert a copy of `template` (a stored row) at `version` of its stream, with a
    new event id, the payload fields given changed, and a hash chained onto the row
    before it under `key`; the stream's rows from `version` on move up by one."""
    stream_id = template["stream_id"]
    content = _json.decode(template["payload"]) | payload
    async with admin.transaction():
        await admin.execute("SET LOCAL session_replication_role = replica")
        for shift in (1_000, -999):  # two steps: UNIQUE (stream_id, version)
            await admin.execute(
                "UPDATE events SET version = version + $3"
                " WHERE stream_id = $1 AND version >= $2",
                stream_id,
                version if shift > 0 else version + 1_000,
                shift,
            )
        previous = await admin.fetchval(
            "SELECT hash FROM events WHERE stream_id = $1 AND version = $2",
            stream_id,
            version - 1,
        )
        row = dict(template) | {
            "event_id": uuid.uuid4(),
            "version": version,
            "payload": msgspec.json.encode(content).decode(),
        }
        await admin.execute(
            "INSERT INTO events (event_id, business_id, stream_id, version, type,"
            " schema_version, payload, metadata, recorded_at, hash, key_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8::text::jsonb, $9,"
            " $10, $11)",
            row["event_id"],
            row["business_id"],
            stream_id,
            version,
            row["type"],
            row["schema_version"],
            row["payload"],
            row["metadata"],
            row["recorded_at"],
            event_hash(key, previous, stored_hashed_content(row)),
            row["key_id"],
        )


def figures(
    bid: int, stream: str, kind: str, **pairs: tuple[object, object]
) -> list[Difference]:
    """Read-model differences of one kind: field=(expected, found), sorted by field."""
    return [
        Difference(
            kind=kind,
            business_id=bid,
            stream_id=stream if kind != "summary" else None,
            field=field,
            expected=expected,  # type: ignore[arg-type]
            found=found,  # type: ignore[arg-type]
        )
        for field, (expected, found) in sorted(pairs.items())
    ]


def forge_debit(payload: dict[str, Any]) -> None:
    assert payload["amount_minor"] == 15000
    payload["amount_minor"] = 1500


async def stored_digest(
    conn: asyncpg.Connection, stream: str, amounts: dict[int, int] | None = None
) -> int:
    """The statement check's `transaction_digest` of a client's rm_transactions rows
    as stored (services/audit/folds.line_digest, in Python), each amount first
    replaced as `amounts` says (what a forged history holds instead)."""
    rows = await conn.fetch(
        "SELECT business_id, transaction_id, entry_type, amount_minor, date,"
        " reversal_of"
        " FROM rm_transactions WHERE client_id = $1",
        int(stream.removeprefix("client-")),
    )
    return sum(
        line_digest(
            row["business_id"],
            row["transaction_id"],
            row["entry_type"],
            (amounts or {}).get(row["amount_minor"], row["amount_minor"]),
            row["date"],
            row["reversal_of"],
        )
        for row in rows
    )


async def forged_debit_figures(
    conn: asyncpg.Connection, bid: int, stream: str
) -> list[Difference]:
    """The read models still hold the 150.00 debit the forged history says was 15.00."""
    digests = (
        await stored_digest(conn, stream, {15000: 1500}),
        await stored_digest(conn, stream),
    )
    return [
        *figures(bid, stream, "client", debit_minor=(1500, 15000)),
        *figures(bid, stream, "summary", total_balance_minor=(-525, 12975)),
        *figures(bid, stream, "statement", debit_minor=(1500, 15000),
                 transaction_digest=digests),
    ]  # fmt: skip
