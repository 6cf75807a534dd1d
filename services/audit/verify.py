"""`ledger audit verify` and GET /api/v3/audit/verify: one pass over the events.

Everything is read in one REPEATABLE READ, read-only transaction, so the events, the
read models, the tracking rows and the checkpoints are one consistent snapshot: work
committed meanwhile is neither half seen nor reported as a difference. Events stream
through a server-side cursor ordered by (stream_id, version); memory grows with the
number of clients and categories, not events.
"""

from __future__ import annotations

import asyncpg
import msgspec

from services.audit.chains import (
    ChainWalk,
    CheckedHead,
    check_heads,
    difference_at,
)
from services.audit.figures import (
    check_categories,
    check_clients,
    check_statements,
    check_summaries,
)
from services.audit.folds import Folds
from services.audit.monitors import check_monitors
from services.audit.report import Difference, Report
from shared import events as e
from shared.keyring import Keyring
from shared.personal_data import PersonalDataError
from shared.store.event_rows import SELECT_EVENTS, envelope_from_row

_EVENTS = SELECT_EVENTS + "{where} ORDER BY stream_id, version"
PREFETCH = 2_000


async def verify(
    conn: asyncpg.Connection, keys: Keyring, business_id: int | None = None
) -> Report:
    """Check every chain, checkpoint and read-model figure (of one business, or all)."""
    where = "WHERE business_id = $1" if business_id is not None else ""
    args = [business_id] if business_id is not None else []
    # One business's verify (every GET /api/v3/audit/verify) needs the tracking rows
    # of its own streams only, not every business's.
    tracking = "SELECT projection, stream_id, version FROM projection_tracking"
    if business_id is not None:
        tracking += (
            " WHERE stream_id IN (SELECT stream_id FROM events WHERE business_id = $1)"
        )
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        tracked = {
            (row["projection"], row["stream_id"]): row["version"]
            for row in await conn.fetch(tracking, *args)
        }
        walk, folds = ChainWalk(keys), Folds(tracked)
        differences: list[Difference] = []
        heads: list[CheckedHead] = []
        businesses: set[int] = set()
        events = 0
        query = _EVENTS.format(where=where)
        keys_missing = _KeysMissing()
        async for row in conn.cursor(query, *args, prefetch=PREFETCH):
            events += 1
            businesses.add(row["business_id"])
            walk.add(row)
            keys_missing.add(row)
            differences += _fold(folds, row, heads)
        differences = walk.differences + keys_missing.differences() + differences
        heads += [
            CheckedHead(row["stream_id"], row["version"], row["hash"], row["source"])
            for row in await conn.fetch(
                "SELECT stream_id, version, hash, 'chain_checkpoints' AS source"
                f" FROM chain_checkpoints {where}",
                *args,
            )
        ]
        differences += await check_heads(conn, heads)
        for check in (check_clients, check_categories, check_summaries, check_monitors):
            differences += await check(conn, folds, business_id)
        differences += await check_statements(conn, folds, business_id)
    return Report(
        ok=not differences,
        businesses=len(businesses),
        streams=walk.streams,
        events=events,
        differences=differences,
    )


class _KeysMissing:
    """Streams with sealed events whose client key is gone without a client.erased
    event: a key deleted behind the ledger's back (it reads as an erasure)."""

    def __init__(self) -> None:
        self._first: dict[str, asyncpg.Record] = {}
        self._erased: set[str] = set()

    def add(self, row: asyncpg.Record) -> None:
        if row["sealed"] is not None and row["wrapped"] is None:
            self._first.setdefault(row["stream_id"], row)
        if row["type"] == "client.erased":
            self._erased.add(row["stream_id"])

    def differences(self) -> list[Difference]:
        return [
            difference_at(row, "key", "client_keys", "the client's key", "missing")
            for stream_id, row in self._first.items()
            if stream_id not in self._erased
        ]


def _fold(
    folds: Folds, row: asyncpg.Record, heads: list[CheckedHead]
) -> list[Difference]:
    """Decode one row and fold it; a payload that does not decode (sealed fields
    that do not open among them) or an event that breaks a ledger rule is a
    difference, and the walk goes on."""
    try:
        event = envelope_from_row(row)
    except (msgspec.DecodeError, msgspec.ValidationError, PersonalDataError) as error:
        return [difference_at(row, "decode", None, row["type"], str(error))]
    if isinstance(event.payload, e.ChainCheckpoint):
        heads += [
            CheckedHead(
                head.stream_id, head.version, head.hash, event.payload.checkpoint_id
            )
            for head in event.payload.heads
        ]
        return []
    try:
        folds.add(event)
    except AssertionError as error:
        found = str(error) or row["type"]
        return [difference_at(row, "rule", None, "a valid event", found)]
    return []
