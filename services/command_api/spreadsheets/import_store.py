"""The client_imports table: which files a business imported, and each import's row.

An import's transaction (commit.py, through import_commit.py) checks for an earlier
import of the same file under a lock on (business, file) before it writes, and records
its row beside its events, so the row exists exactly when the events do. The import
status query (services/query_api/import_status.py) reads the row back.
"""

from __future__ import annotations

import asyncpg
import msgspec

from shared import events as e


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


class ImportRecord(msgspec.Struct, kw_only=True, frozen=True):
    import_id: str
    business_id: int
    file_sha256: str
    category_id: int
    imported: int
    total_unpaid_minor: int
    allow_duplicate: bool = False


class DuplicateImport(Exception):
    """The business imported this file before (`first`, that import's id)."""

    def __init__(self, first: str) -> None:
        super().__init__(first)
        self.first = first


async def check_first(conn: asyncpg.Connection, record: ImportRecord) -> None:
    """Check for an earlier import of the file under a lock on (business, file), so
    that two uploads of one file at once cannot both pass the check: DuplicateImport
    unless duplicates are allowed. The lock is the transaction's, held to its end."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"client-import:{record.business_id}:{record.file_sha256}",
    )
    if record.allow_duplicate:
        return
    first = await first_import(conn, record.business_id, record.file_sha256)
    if first is not None:
        raise DuplicateImport(first)


async def insert(
    conn: asyncpg.Connection, record: ImportRecord, last: e.Envelope
) -> None:
    """The import's row, with its last event (what the status waits for)."""
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
