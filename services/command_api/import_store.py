"""Hop 3 for spreadsheets: the import's reads, and its one short write transaction.

Everything is validated and every event built before BEGIN: the transaction only
claims new category names, inserts the events in chunks, records the import and the
Idempotency-Key's response, and commits. It must stay short, because readers of the
events table stop below the oldest running transaction (read_after's xmin rule): a
long import transaction would hold back the publication of everyone's events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import asyncpg
import msgspec

from services.command_api.batch_io import StoredResponse
from services.command_api.import_events import ImportIds
from services.command_api.submissions import IdempotencyClaim, Result
from shared import events as e
from shared.errors import Conflict
from shared.store.event_store import NewEvent


async def categories(conn: asyncpg.Pool, business_id: int) -> dict[str, int]:
    """The business's categories: name key -> id."""
    rows = await conn.fetch(
        "SELECT name_key, category_id FROM category_names WHERE business_id = $1",
        business_id,
    )
    return {row["name_key"]: row["category_id"] for row in rows}


async def first_import(
    conn: asyncpg.Pool | asyncpg.Connection, business_id: int, sha256: str
) -> str | None:
    """The id of the business's first import of a file with this content."""
    found: str | None = await conn.fetchval(
        "SELECT import_id FROM client_imports WHERE business_id = $1"
        " AND file_sha256 = $2 ORDER BY created_at LIMIT 1",
        business_id,
        sha256,
    )
    return found


async def stored_response(
    pool: asyncpg.Pool, business_id: int, claim: IdempotencyClaim
) -> StoredResponse | None:
    row = await pool.fetchrow(
        "SELECT request_hash, status, body, position FROM idempotency_keys"
        " WHERE business_id = $1 AND key = $2",
        business_id,
        claim.key,
    )
    if row is None:
        return None
    result = Result(
        status=row["status"],
        body=bytes(row["body"]),
        position=row["position"] or None,
        replayed=True,
    )
    return StoredResponse(row["request_hash"], result)


_ALLOCATE = """
SELECT array(SELECT nextval('client_id_seq') FROM generate_series(1, $1)) AS clients,
       array(SELECT nextval('account_id_seq') FROM generate_series(1, $2)) AS accounts,
       array(SELECT nextval('entry_id_seq') FROM generate_series(1, $3)) AS entries,
       array(SELECT nextval('category_id_seq') FROM generate_series(1, $4))
           AS categories
"""


async def allocate(
    pool: asyncpg.Pool, clients: int, accounts: int, entries: int, categories: int
) -> ImportIds:
    """Draw every id the import needs from the sequences, in one query."""
    row = await pool.fetchrow(_ALLOCATE, clients, accounts, entries, categories)
    return ImportIds(
        clients=list(row["clients"]),
        accounts=list(row["accounts"]),
        entries=list(row["entries"]),
        categories=list(row["categories"]),
    )


log = logging.getLogger(__name__)
COPY_COLUMNS = (
    "event_id",
    "business_id",
    "stream_id",
    "version",
    "type",
    "schema_version",
    "payload",
    "metadata",
    "recorded_at",
    "hash",
    "key_id",
)


def copy_records(events: Sequence[NewEvent]) -> list[tuple[object, ...]]:
    """The events as rows for COPY, encoded before the transaction begins."""
    return [
        (
            event.event_id,
            event.business_id,
            event.stream_id,
            event.version,
            e.event_type(event.payload),
            event.schema_version,
            msgspec.json.encode(event.payload),
            msgspec.json.encode(event.metadata),
            event.recorded_at,
            event.hash,
            event.key_id,
        )
        for event in events
    ]


class ImportRecord(msgspec.Struct, kw_only=True, frozen=True):
    import_id: str
    business_id: int
    file_sha256: str
    category_id: int
    imported: int
    total_unpaid_minor: int
    new_category_names: dict[str, int]  # name key -> new category id
    allow_duplicate: bool = False


class Committed(msgspec.Struct, kw_only=True, frozen=True):
    """The import's last stored event, or the id of the import that had the file."""

    last: e.Envelope | None = None
    duplicate_of: str | None = None


async def copy_connection(dsn: str) -> asyncpg.Connection:
    """A connection of its own whose jsonb codec is binary (COPY needs one), fed the
    JSON bytes encoded before the transaction: version byte 1, then the text."""
    conn = await asyncpg.connect(dsn, command_timeout=120)
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda raw: b"\x01" + raw,
        decoder=lambda raw: raw[1:],
        schema="pg_catalog",
        format="binary",
    )
    return conn


async def commit(
    dsn: str,
    record: ImportRecord,
    events: Sequence[NewEvent],
    records: Sequence[tuple[object, ...]],
    claim: IdempotencyClaim | None,
    response: Result,
) -> Committed:
    """Write the whole import atomically, unless the business imported the same file
    meanwhile. The rows come encoded (copy_records): the transaction only copies."""
    conn = await copy_connection(dsn)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            first = await _first_locked(conn, record)
            if first is not None:
                return Committed(duplicate_of=first)
            await _claim_names(conn, record)
            await conn.copy_records_to_table(
                "events", records=records, columns=COPY_COLUMNS
            )
            position = await conn.fetchval(
                "SELECT position FROM events WHERE event_id = $1",
                events[-1].event_id,
            )
            last = events[-1].stored(position)
            await _record(conn, record, last)
            if claim is not None:
                await _store_response(conn, record.business_id, claim, response, last)
            await conn.execute("SELECT pg_notify('ledger_events', '')")
        log.info(
            "import %s: %d events committed in %.3f s",
            record.import_id,
            len(records),
            time.perf_counter() - started,
        )
    finally:
        await conn.close()
    return Committed(last=last)


async def _first_locked(conn: asyncpg.Connection, record: ImportRecord) -> str | None:
    """Check for an earlier import of the file under a lock on (business, file), so
    that two uploads of one file at once cannot both pass the check."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"client-import:{record.business_id}:{record.file_sha256}",
    )
    if record.allow_duplicate:
        return None
    return await first_import(conn, record.business_id, record.file_sha256)


async def _claim_names(conn: asyncpg.Connection, record: ImportRecord) -> None:
    claims = record.new_category_names
    if not claims:
        return
    rows = await conn.fetch(
        "INSERT INTO category_names (business_id, name_key, category_id)"
        " SELECT $1, * FROM unnest($2::text[], $3::bigint[])"
        " ON CONFLICT DO NOTHING RETURNING name_key",
        record.business_id,
        list(claims),
        list(claims.values()),
    )
    if len(rows) != len(claims):
        raise Conflict("A category of the file was created concurrently; retry")


async def _record(
    conn: asyncpg.Connection, record: ImportRecord, last: e.Envelope
) -> None:
    await conn.execute(
        "INSERT INTO client_imports (import_id, business_id, file_sha256,"
        " category_id, imported, total_unpaid, last_stream_id, last_version)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        record.import_id,
        record.business_id,
        record.file_sha256,
        record.category_id,
        record.imported,
        record.total_unpaid_minor,
        last.stream_id,
        last.version,
    )


async def _store_response(
    conn: asyncpg.Connection,
    business_id: int,
    claim: IdempotencyClaim,
    response: Result,
    last: e.Envelope,
) -> None:
    inserted = await conn.fetchval(
        "INSERT INTO idempotency_keys"
        " (business_id, key, request_hash, status, body, position)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING key",
        business_id,
        claim.key,
        claim.request_hash,
        response.status,
        response.body,
        last.position,
    )
    if inserted is None:
        raise Conflict("A request with this Idempotency-Key committed concurrently")
