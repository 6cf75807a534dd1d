"""The statements projection: every transaction and deposit line, per client."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from projections.runner import Projection
from shared import events as e

_TRANSACTIONS = """
INSERT INTO rm_transactions (transaction_id, business_id, client_id, entry_type,
                             amount_minor, date, description, reference, created_at,
                             position)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[],
                     $5::bigint[], $6::date[], $7::text[], $8::text[],
                     $9::timestamptz[], $10::bigint[])
"""
_DEPOSITS = """
INSERT INTO rm_deposits (deposit_id, business_id, client_id, entry_type, amount_minor,
                         date, description, created_at, position)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[],
                     $5::bigint[], $6::date[], $7::text[], $8::timestamptz[],
                     $9::bigint[])
"""


async def apply(conn: asyncpg.Connection, events: Sequence[e.Envelope]) -> None:
    """Insert every new line of the batch: one statement per table."""
    transactions = [
        (
            p.transaction_id,
            ev.business_id,
            p.client_id,
            p.entry_type,
            p.amount_minor,
            p.date,
            p.description,
            p.reference,
            ev.recorded_at,
            ev.position,
        )
        for ev in events
        if isinstance(p := ev.payload, e.TransactionPosted)
    ]
    deposits = [
        (
            p.deposit_id,
            ev.business_id,
            p.client_id,
            p.entry_type,
            p.amount_minor,
            p.date,
            p.description,
            ev.recorded_at,
            ev.position,
        )
        for ev in events
        if isinstance(p := ev.payload, e.DepositPosted)
    ]
    if transactions:
        await conn.execute(_TRANSACTIONS, *_columns(transactions))
    if deposits:
        await conn.execute(_DEPOSITS, *_columns(deposits))


def _columns(rows: Sequence[tuple[object, ...]]) -> list[list[object]]:
    """Rows to the column arrays that unnest() takes."""
    return [list(column) for column in zip(*rows, strict=True)]


projection = Projection("statements", apply)
