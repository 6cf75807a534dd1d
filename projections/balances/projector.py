"""The balances projection: clients with their figures, and categories with counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import asyncpg
import msgspec

from projections.balances import monitors
from projections.batch_statement import Write
from projections.runner import Projection
from shared import events as e
from shared.domain import signed

_POSTINGS = """
UPDATE rm_clients c
SET debit_minor = c.debit_minor + p.debit_minor,
    credit_minor = c.credit_minor + p.credit_minor,
    deposit_minor = c.deposit_minor + p.deposit_minor,
    deposit_account_id = coalesce(p.deposit_account_id, c.deposit_account_id),
    version = p.version
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
            $6::integer[])
     AS p(client_id, debit_minor, credit_minor, deposit_minor, deposit_account_id,
          version)
WHERE c.client_id = p.client_id
"""


# A reversal is a posting of the opposite entry type (shared.domain.evolve_client
# counts it the same way): reversing a debit adds to total_credit, and the balance
# returns to what it was before the original.
POSTINGS = (
    e.TransactionPosted,
    e.DepositPosted,
    e.TransactionReversed,
    e.DepositReversed,
)
DEPOSITS = (e.DepositPosted, e.DepositReversed)
Posting = (
    e.TransactionPosted | e.DepositPosted | e.TransactionReversed | e.DepositReversed
)


class Sums(msgspec.Struct):
    """One client's postings within a batch, summed (addition commutes)."""

    debit_minor: int = 0
    credit_minor: int = 0
    deposit_minor: int = 0
    deposit_account_id: int | None = None
    version: int = 0


async def apply(conn: asyncpg.Connection, events: Sequence[e.Envelope]) -> None:
    """Apply a batch in order. Postings (the bulk of the traffic) are summed per client
    and client creations gathered (an import brings thousands), each kind written in
    one statement; any other event first flushes both, creations before sums, so each
    client row still sees its events in stream order."""
    sums: dict[int, Sums] = {}
    created: list[e.Envelope] = []
    for event in events:
        payload = event.payload
        if isinstance(payload, POSTINGS):
            client_sums = sums.get(payload.client_id)
            if client_sums is None:
                client_sums = sums[payload.client_id] = Sums()
            _add(client_sums, event, payload)
            continue
        if isinstance(payload, e.ClientCreated):
            created.append(event)
            continue
        await _flush_all(conn, created, sums)
        await _apply_one(conn, event)
    await _flush_all(conn, created, sums)


async def _flush_all(
    conn: asyncpg.Connection, created: list[e.Envelope], sums: dict[int, Sums]
) -> None:
    """The gathered creations (with their clients' sums), then the other sums. A
    client's postings follow its creation in its stream, so a sum gathered with a
    creation is all after it."""
    await _clients_created(conn, created, sums)
    created.clear()
    await _flush(conn, sums)


def _add(sums: Sums, event: e.Envelope, payload: Posting) -> None:
    if isinstance(payload, DEPOSITS):
        sums.deposit_minor += signed(payload.entry_type, payload.amount_minor)
        sums.deposit_account_id = payload.deposit_account_id
    elif payload.entry_type == "debit":
        sums.debit_minor += payload.amount_minor
    else:
        sums.credit_minor += payload.amount_minor
    sums.version = event.version


async def _flush(conn: asyncpg.Connection, sums: dict[int, Sums]) -> None:
    if not sums:
        return
    await conn.execute(_POSTINGS, *_postings_args(sums))
    sums.clear()


def _postings_args(sums: dict[int, Sums]) -> tuple[list[object], ...]:
    return (
        list(sums),
        [item.debit_minor for item in sums.values()],
        [item.credit_minor for item in sums.values()],
        [item.deposit_minor for item in sums.values()],
        [item.deposit_account_id for item in sums.values()],
        [item.version for item in sums.values()],
    )


def writes(events: Sequence[e.Envelope]) -> list[Write] | None:
    """A batch of postings alone as one statement (projections/batch_statement.py);
    None for a batch with any other event."""
    sums: dict[int, Sums] = {}
    for event in events:
        payload = event.payload
        if not isinstance(payload, POSTINGS):
            return None
        _add(sums.setdefault(payload.client_id, Sums()), event, payload)
    return [Write(_POSTINGS, _postings_args(sums))]


async def _apply_one(conn: asyncpg.Connection, event: e.Envelope) -> None:
    payload = event.payload
    if isinstance(payload, e.CategoryCreated):
        await _category_created(conn, event, payload)
    elif isinstance(payload, e.ClientUpdated):
        await _client_updated(conn, event, payload)
    elif isinstance(payload, e.ClientArchived | e.ClientUnarchived):
        await conn.execute(
            "UPDATE rm_clients SET archived = $2, updated_at = $3, version = $4"
            " WHERE client_id = $1",
            payload.client_id,
            isinstance(payload, e.ClientArchived),
            event.recorded_at,
            event.version,
        )
    elif isinstance(payload, e.ClientDeleted):
        await _client_deleted(conn, event, payload)
    elif isinstance(payload, e.ClientErased):
        await conn.execute(_ERASED, payload.client_id, event.recorded_at, event.version)
    elif isinstance(payload, e.MonitorCreated | e.MonitorDeleted):
        await monitors.apply(conn, event.business_id, event.recorded_at, payload)
    # clients.imported only records the import: its clients arrive as their own
    # client.created and posting events, so this projection has nothing to do.


async def _category_created(
    conn: asyncpg.Connection, event: e.Envelope, payload: e.CategoryCreated
) -> None:
    await conn.execute(
        "INSERT INTO rm_categories (category_id, business_id, name, description,"
        " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        payload.category_id,
        event.business_id,
        payload.name,
        payload.description,
        event.recorded_at,
    )


# A batch's new clients are written with COPY (see statements/projector.py), each
# with the sums of its postings in the same batch: an import's or a replay's client
# row is written once, not inserted and then updated.
_CLIENT_COLUMNS = (
    "client_id",
    "business_id",
    "account_id",
    "category_id",
    *e.PROFILE_FIELDS,
    "created_at",
    "updated_at",
    "debit_minor",
    "credit_minor",
    "deposit_minor",
    "deposit_account_id",
    "version",
)
# The figures stay; the person goes (updated_at moves, as for any profile change).
_ERASED = f"""
UPDATE rm_clients
SET erased = true, updated_at = $2, version = $3,
    {", ".join(f"{name} = NULL" for name in e.PROFILE_FIELDS)}
WHERE client_id = $1
"""
_COUNTS = """
UPDATE rm_categories c SET customer_count = c.customer_count + t.change
FROM unnest($1::bigint[], $2::integer[]) AS t(category_id, change)
WHERE c.category_id = t.category_id
"""


async def _clients_created(
    conn: asyncpg.Connection, created: Sequence[e.Envelope], sums: dict[int, Sums]
) -> None:
    """Insert the gathered client rows, each with (and taking out of `sums`) its
    postings that followed it in the batch, and count them per category: two
    statements."""
    rows = []
    counts: Counter[int] = Counter()
    for event in created:
        payload = event.payload
        assert isinstance(payload, e.ClientCreated)
        posted = sums.pop(payload.client_id, None) or Sums(version=event.version)
        rows.append(
            (
                payload.client_id,
                event.business_id,
                payload.account_id,
                payload.category_id,
                *(getattr(payload, name) for name in e.PROFILE_FIELDS),
                event.recorded_at,
                event.recorded_at,
                posted.debit_minor,
                posted.credit_minor,
                posted.deposit_minor,
                posted.deposit_account_id,
                posted.version,
            )
        )
        counts[payload.category_id] += 1
    if not rows:
        return
    await conn.copy_records_to_table(
        "rm_clients", records=rows, columns=_CLIENT_COLUMNS
    )
    await conn.execute(_COUNTS, list(counts), list(counts.values()))


async def _client_updated(
    conn: asyncpg.Connection, event: e.Envelope, payload: e.ClientUpdated
) -> None:
    changes = {
        name: value
        for name, value in msgspec.structs.asdict(payload).items()
        if value is not msgspec.UNSET and name != "client_id"
    }
    if "category_id" in changes:
        previous = await conn.fetchval(
            "SELECT category_id FROM rm_clients WHERE client_id = $1", payload.client_id
        )
        await _count(conn, previous, -1)
        await _count(conn, changes["category_id"], 1)
    # Column names come from the event's own field names, never from input.
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=4))
    separator = ", " if assignments else ""
    await conn.execute(
        f"UPDATE rm_clients SET updated_at = $2, version = $3{separator}{assignments}"
        " WHERE client_id = $1",
        payload.client_id,
        event.recorded_at,
        event.version,
        *changes.values(),
    )


async def _client_deleted(
    conn: asyncpg.Connection, event: e.Envelope, payload: e.ClientDeleted
) -> None:
    category_id = await conn.fetchval(
        "UPDATE rm_clients SET deleted = true, version = $2 WHERE client_id = $1"
        " RETURNING category_id",
        payload.client_id,
        event.version,
    )
    await _count(conn, category_id, -1)


async def _count(conn: asyncpg.Connection, category_id: int, change: int) -> None:
    await conn.execute(
        "UPDATE rm_categories SET customer_count = customer_count + $2"
        " WHERE category_id = $1",
        category_id,
        change,
    )


projection = Projection("balances", apply, writes)
