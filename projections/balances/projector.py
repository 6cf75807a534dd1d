"""The balances projection: clients with their figures, and categories with counts."""

from __future__ import annotations

import asyncpg
import msgspec

from projections.runner import Projection
from shared import events as e


async def apply(conn: asyncpg.Connection, event: e.Envelope) -> None:
    payload = event.payload
    if isinstance(payload, e.CategoryCreated):
        await _category_created(conn, event, payload)
    elif isinstance(payload, e.ClientCreated):
        await _client_created(conn, event, payload)
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
    elif isinstance(payload, e.TransactionPosted):
        debit = payload.amount_minor if payload.entry_type == "debit" else 0
        await conn.execute(
            "UPDATE rm_clients SET debit_minor = debit_minor + $2,"
            " credit_minor = credit_minor + $3, version = $4 WHERE client_id = $1",
            payload.client_id,
            debit,
            payload.amount_minor - debit,
            event.version,
        )
    elif isinstance(payload, e.DepositPosted):
        sign = 1 if payload.entry_type == "debit" else -1
        await conn.execute(
            "UPDATE rm_clients SET deposit_minor = deposit_minor + $2,"
            " deposit_account_id = $3, version = $4 WHERE client_id = $1",
            payload.client_id,
            sign * payload.amount_minor,
            payload.deposit_account_id,
            event.version,
        )


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


async def _client_created(
    conn: asyncpg.Connection, event: e.Envelope, payload: e.ClientCreated
) -> None:
    await conn.execute(
        "INSERT INTO rm_clients (client_id, business_id, account_id, category_id,"
        " first_name, last_name, phone_number, business_name, business_address,"
        " business_phone, business_location, business_email, created_at, updated_at,"
        " version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13,"
        " $14)",
        payload.client_id,
        event.business_id,
        payload.account_id,
        payload.category_id,
        *(getattr(payload, name) for name in e.PROFILE_FIELDS),
        event.recorded_at,
        event.version,
    )
    await _count(conn, payload.category_id, 1)


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


projection = Projection("balances", apply)
