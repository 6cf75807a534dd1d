"""The statements projection: every transaction and deposit line, per client."""

from __future__ import annotations

import asyncpg

from projections.runner import Projection
from shared import events as e


async def apply(conn: asyncpg.Connection, event: e.Envelope) -> None:
    payload = event.payload
    if isinstance(payload, e.TransactionPosted):
        await conn.execute(
            "INSERT INTO rm_transactions (transaction_id, business_id, client_id,"
            " entry_type, amount_minor, date, description, reference, created_at,"
            " position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            payload.transaction_id,
            event.business_id,
            payload.client_id,
            payload.entry_type,
            payload.amount_minor,
            payload.date,
            payload.description,
            payload.reference,
            event.recorded_at,
            event.position,
        )
    elif isinstance(payload, e.DepositPosted):
        await conn.execute(
            "INSERT INTO rm_deposits (deposit_id, business_id, client_id, entry_type,"
            " amount_minor, date, description, created_at, position)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            payload.deposit_id,
            event.business_id,
            payload.client_id,
            payload.entry_type,
            payload.amount_minor,
            payload.date,
            payload.description,
            event.recorded_at,
            event.position,
        )


projection = Projection("statements", apply)
