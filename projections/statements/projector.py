"""The statements projection: every transaction and deposit line, per client."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec

from projections.batch_statement import Write
from projections.runner import Projection
from shared import events as e

# COPY, not INSERT ... SELECT FROM unnest(arrays): asyncpg encodes a record per row
# in its binary COPY format, where each element of an array parameter costs a Python
# isinstance() check, and PostgreSQL's COPY inserts rows with the least work. A
# replay inserts 750,000 transaction lines per million events; the live projectors a
# frame's. The table resolves through the search_path (a replay's own tables).
# A line's columns after its id; a transaction line has a reference too.
_LINE_COLUMNS = (
    "business_id",
    "client_id",
    "entry_type",
    "amount_minor",
    "date",
    "description",
    "created_at",
    "position",
    "reversal_of",
)
_TRANSACTION_COLUMNS = ("transaction_id", *_LINE_COLUMNS, "reference")
_DEPOSIT_COLUMNS = ("deposit_id", *_LINE_COLUMNS)
# The lines a batch's reversals reverse; run after the batch's inserts, so an
# original posted in the same batch is already there.
_TRANSACTIONS_REVERSED = """
UPDATE rm_transactions SET reversed = true WHERE transaction_id = ANY($1::bigint[])
"""
_DEPOSITS_REVERSED = """
UPDATE rm_deposits SET reversed = true WHERE deposit_id = ANY($1::bigint[])
"""
# An erased client's lines keep their figures; their texts become NULL. Run after the
# batch's inserts too: a line posted after the erasure carries none already. Client
# ids are unique across businesses; the business narrows the transactions' index
# (rm_transactions_by_business) to the client's lines.
_ERASED_TRANSACTIONS = (
    "UPDATE rm_transactions SET description = NULL, reference = NULL"
    " WHERE client_id = ANY($1::bigint[]) AND business_id = ANY($2::bigint[])"
)
_ERASED_DEPOSITS = (
    "UPDATE rm_deposits SET description = NULL WHERE client_id = ANY($1::bigint[])"
)


Line = tuple[object, ...]


class Lines(msgspec.Struct):
    """A batch's new statement lines and the ids of the lines its reversals
    reverse."""

    transactions: list[Line] = msgspec.field(default_factory=list)
    deposits: list[Line] = msgspec.field(default_factory=list)
    transactions_reversed: list[int] = msgspec.field(default_factory=list)
    deposits_reversed: list[int] = msgspec.field(default_factory=list)
    erased: list[int] = msgspec.field(default_factory=list)  # erased clients' ids
    erased_businesses: list[int] = msgspec.field(default_factory=list)  # theirs


# A COPY is two round trips (the COPY, then its rows), an INSERT one: the few lines
# of a live frame are INSERTed from arrays, more than this many are COPYed.
COPY_FROM_LINES = 64
_COLUMN_TYPES = {
    "transaction_id": "bigint",
    "deposit_id": "bigint",
    "business_id": "bigint",
    "client_id": "bigint",
    "entry_type": "text",
    "amount_minor": "bigint",
    "date": "date",
    "description": "text",
    "created_at": "timestamptz",
    "position": "bigint",
    "reversal_of": "bigint",
    "reference": "text",
}


class _Table(msgspec.Struct, frozen=True):
    """A lines table: its name, its columns in a line's order, and their INSERT."""

    name: str
    columns: tuple[str, ...]
    insert: str


def _table(name: str, columns: tuple[str, ...]) -> _Table:
    arrays = ", ".join(f"${i}::{_COLUMN_TYPES[c]}[]" for i, c in enumerate(columns, 1))
    insert = f"INSERT INTO {name} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"
    return _Table(name, columns, insert)


_TRANSACTIONS = _table("rm_transactions", _TRANSACTION_COLUMNS)
_DEPOSITS = _table("rm_deposits", _DEPOSIT_COLUMNS)


async def apply(conn: asyncpg.Connection, events: Sequence[e.Envelope]) -> None:
    """Insert every new line of the batch (a reversal is a line too), one statement
    per table, then mark the lines the batch reversed."""
    lines = batch_lines(events)
    await _write_lines(conn, _TRANSACTIONS, lines.transactions)
    await _write_lines(conn, _DEPOSITS, lines.deposits)
    if lines.transactions_reversed:
        await conn.execute(_TRANSACTIONS_REVERSED, lines.transactions_reversed)
    if lines.deposits_reversed:
        await conn.execute(_DEPOSITS_REVERSED, lines.deposits_reversed)
    if lines.erased:
        await conn.execute(_ERASED_TRANSACTIONS, lines.erased, lines.erased_businesses)
        await conn.execute(_ERASED_DEPOSITS, lines.erased)


async def _write_lines(
    conn: asyncpg.Connection, table: _Table, lines: list[Line]
) -> None:
    if not lines:
        return
    if len(lines) > COPY_FROM_LINES:
        await conn.copy_records_to_table(
            table.name, records=lines, columns=table.columns
        )
        return
    await conn.execute(table.insert, *_columns(lines))


def _columns(lines: list[Line]) -> tuple[list[object], ...]:
    return tuple(list(column) for column in zip(*lines, strict=True))


def writes(events: Sequence[e.Envelope]) -> list[Write] | None:
    """A batch's lines as INSERTs (projections/batch_statement.py); None for one
    with a reversal or an erasure (its UPDATE must see the lines inserted before it)
    or with more lines than an INSERT takes."""
    lines = batch_lines(events)
    if lines.transactions_reversed or lines.deposits_reversed or lines.erased:
        return None
    tables = ((_TRANSACTIONS, lines.transactions), (_DEPOSITS, lines.deposits))
    if any(len(rows) > COPY_FROM_LINES for _, rows in tables):
        return None
    return [Write(table.insert, _columns(rows)) for table, rows in tables if rows]


def batch_lines(events: Sequence[e.Envelope]) -> Lines:
    """The batch's lines, in one pass (a replay's million events, a frame's
    thousands): isinstance() with one class each, cheaper than with a union. A
    reversal's reason is its line's description."""
    lines = Lines()
    for event in events:
        p = event.payload
        if isinstance(p, e.TransactionPosted):
            line = _line(event, p, p.transaction_id, p.description, None, p.reference)
            lines.transactions.append(line)
        elif isinstance(p, e.DepositPosted):
            lines.deposits.append(_line(event, p, p.deposit_id, p.description, None))
        elif isinstance(p, e.TransactionReversed):
            reference = None if p.reason is None else ""  # None: erased, as the reason
            line = _line(event, p, p.transaction_id, p.reason, p.reversal_of, reference)
            lines.transactions.append(line)
            lines.transactions_reversed.append(p.reversal_of)
        elif isinstance(p, e.DepositReversed):
            lines.deposits.append(
                _line(event, p, p.deposit_id, p.reason, p.reversal_of)
            )
            lines.deposits_reversed.append(p.reversal_of)
        elif isinstance(p, e.ClientErased):
            lines.erased.append(p.client_id)
            lines.erased_businesses.append(event.business_id)
    return lines


Posting = (
    e.TransactionPosted | e.TransactionReversed | e.DepositPosted | e.DepositReversed
)


def _line(
    event: e.Envelope,
    posting: Posting,
    line_id: int,
    description: str | None,
    reversal_of: int | None,
    *reference: str | None,
) -> Line:
    """A line in the column order of _TRANSACTION_COLUMNS (with a reference) or
    _DEPOSIT_COLUMNS (without)."""
    return (
        line_id,
        event.business_id,
        posting.client_id,
        posting.entry_type,
        posting.amount_minor,
        posting.date,
        description,
        event.recorded_at,
        event.position,
        reversal_of,
        *reference,
    )


projection = Projection("statements", apply, writes)
