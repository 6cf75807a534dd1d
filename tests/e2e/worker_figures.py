"""Figures the worker crash tests (test_worker_crash_points) read from a ledger
database: the store's events in the relay's order, the read models' sums, the
projections' tracking rows, and the order in which statement lines were committed."""

from __future__ import annotations

from collections.abc import Awaitable

import asyncpg

from shared import events as e
from tests.e2e.worker_processes import behind


async def event_ids_in_relay_order(admin: asyncpg.Connection) -> list[str]:
    """Every stored event id in the relay's order (event_store.read_after's)."""
    rows = await admin.fetch(
        "SELECT event_id FROM events ORDER BY transaction_id, position"
    )
    return [str(row["event_id"]) for row in rows]


async def stored_counts(admin: asyncpg.Connection) -> dict[str, int]:
    rows = await admin.fetch("SELECT type, count(*) AS n FROM events GROUP BY type")
    return {row["type"]: int(row["n"]) for row in rows}


async def client_balances(admin: asyncpg.Connection) -> dict[int, list[int]]:
    rows = await admin.fetch(
        "SELECT client_id, debit_minor, credit_minor FROM rm_clients"
    )
    return {
        row["client_id"]: [int(row["debit_minor"]), int(row["credit_minor"])]
        for row in rows
    }


async def statement_sums(admin: asyncpg.Connection) -> dict[int, list[int]]:
    """Per client: [debit, credit, line count] of its statement lines."""
    rows = await admin.fetch(
        "SELECT client_id,"
        " sum(amount_minor) FILTER (WHERE entry_type = 'debit') AS debit,"
        " sum(amount_minor) FILTER (WHERE entry_type = 'credit') AS credit,"
        " count(*) AS lines FROM rm_transactions GROUP BY client_id"
    )
    return {
        row["client_id"]: [
            int(row["debit"] or 0),
            int(row["credit"] or 0),
            row["lines"],
        ]
        for row in rows
    }


async def tracked(admin: asyncpg.Connection, projection: str) -> dict[str, int]:
    rows = await admin.fetch(
        "SELECT stream_id, version FROM projection_tracking WHERE projection = $1",
        projection,
    )
    return {row["stream_id"]: int(row["version"]) for row in rows}


async def heads(admin: asyncpg.Connection) -> dict[str, int]:
    rows = await admin.fetch(
        "SELECT stream_id, max(version) AS head FROM events GROUP BY stream_id"
    )
    return {row["stream_id"]: int(row["head"]) for row in rows}


def expected_counts(businesses: int, clients: int, rounds: int) -> dict[str, int]:
    """The store after that many businesses and clients, and `rounds` postings to
    each client: one event per command."""
    return {
        "category.created": businesses,
        "client.created": clients,
        "transaction.posted": clients * rounds,
    }


async def assert_exact(
    admin: asyncpg.Connection,
    businesses: int,
    expected: dict[int, list[int]],
    rounds: int,
) -> None:
    """The store, both projections and their tracking rows, exactly: `expected`
    holds each client's [debit, credit] after `rounds` postings."""
    counts = expected_counts(businesses, len(expected), rounds)
    assert await stored_counts(admin) == counts
    assert await client_balances(admin) == expected
    assert await statement_sums(admin) == {
        client: [debit, credit, rounds] for client, (debit, credit) in expected.items()
    }
    stream_heads = await heads(admin)
    assert await tracked(admin, "balances") == stream_heads
    assert await tracked(admin, "statements") == stream_heads
    assert await admin.fetchval("SELECT count(*) FROM projection_parked") == 0


async def equals(value: Awaitable[object], wanted: object) -> bool:
    return await value == wanted


async def caught_up(admin: asyncpg.Connection) -> bool:
    """Both projections have applied every stream up to its head."""
    return (
        await behind(admin, "balances") == 0 and await behind(admin, "statements") == 0
    )


async def applied_order(admin: asyncpg.Connection) -> dict[int, list[int]]:
    """Per client, its statement lines' positions in the order the projectors
    committed them (age(xmin): the older the inserting transaction, the earlier;
    lines a reversal marks get a new xmin, and these tests post none)."""
    rows = await admin.fetch(
        "SELECT client_id, position FROM rm_transactions"
        " ORDER BY client_id, age(xmin) DESC, position"
    )
    order: dict[int, list[int]] = {}
    for row in rows:
        order.setdefault(row["client_id"], []).append(int(row["position"]))
    return order


async def relay_order(
    admin: asyncpg.Connection, clients: list[tuple[int, int]]
) -> dict[int, list[int]]:
    """Per client, the positions of its postings in the relay's order."""
    client_of = {e.client_stream(client_id): client_id for _, client_id in clients}
    rows = await admin.fetch(
        "SELECT stream_id, position FROM events WHERE type = 'transaction.posted'"
        " ORDER BY transaction_id, position"
    )
    order: dict[int, list[int]] = {}
    for row in rows:
        order.setdefault(client_of[row["stream_id"]], []).append(int(row["position"]))
    return order
