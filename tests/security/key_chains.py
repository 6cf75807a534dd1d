"""Key chains as the secrets tests forge and read them: a stream rewritten as someone
with write access and a key can (relabelled, or as before key ids), a tampered
principal, the business's stored rows, and the chain differences verify names."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.audit.report import Difference
from services.audit.verify import verify
from shared.hash_chain import GENESIS, event_hash
from shared.keyring import Keyring
from shared.store.event_rows import SELECT_EVENTS, stored_hashed_content

CHAIN_KINDS = ("hash", "version", "key")


async def rechain(
    admin: asyncpg.Connection,
    stream_id: str,
    versions: set[int],
    key: bytes,
    key_id: str | None,
) -> None:
    """Rewrite these rows of the stream as someone with write access and `key` can:
    labelled `key_id` (None: as before key ids), hashed with `key`, each chained to
    the stored hash before it. Also how the old code wrote a legacy store."""
    async with admin.transaction():
        await admin.execute("SET LOCAL session_replication_role = replica")
        rows = await admin.fetch(
            SELECT_EVENTS + "WHERE stream_id = $1 ORDER BY version", stream_id
        )
        previous = GENESIS
        for row in rows:
            if row["version"] in versions:
                content = stored_hashed_content(row)
                content.pop("key_id", None)
                if key_id is not None:
                    content["key_id"] = key_id
                hashed = event_hash(key, previous, content)
                await admin.execute(
                    "UPDATE events SET key_id = $1, hash = $2 WHERE position = $3",
                    key_id,
                    hashed,
                    row["position"],
                )
                previous = hashed
            else:
                previous = row["hash"]


async def rows_of(pool: asyncpg.Pool, business_id: int) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            SELECT_EVENTS + "WHERE business_id = $1 ORDER BY stream_id, version",
            business_id,
        )
    )


async def chain_differences(
    pool: asyncpg.Pool, keys: Keyring, business_id: int
) -> list[Difference]:
    async with pool.acquire() as conn:
        report = await verify(conn, keys, business_id)
    return [d for d in report.differences if d.kind in CHAIN_KINDS]


def difference(row: asyncpg.Record, kind: str, expected: str, found: Any) -> Difference:
    return Difference(
        kind=kind,
        business_id=row["business_id"],
        stream_id=row["stream_id"],
        position=row["position"],
        version=row["version"],
        field="hash" if kind == "hash" else "key_id",
        expected=expected,
        found=found,
    )


def by_stream(found: Difference) -> tuple[str, int]:
    return found.stream_id or "", found.version or 0


async def tamper_metadata(admin: asyncpg.Connection, position: int) -> None:
    async with admin.transaction():
        await admin.execute("SET LOCAL session_replication_role = replica")
        await admin.execute(
            "UPDATE events SET metadata = jsonb_set(metadata, '{principal}',"
            " '\"someone else\"') WHERE position = $1",
            position,
        )
