"""The category_names table: each business's category names (by name key), and the
claim on a new one that keeps them unique across processes.

A name is claimed inside the transaction that appends its category.created event
(commit.py), so the name and the category exist together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import msgspec

from shared import commands as c
from shared.domain import DEFAULT_CATEGORY, name_key
from shared.errors import ConcurrencyConflict


async def of_business(conn: asyncpg.Pool, business_id: int) -> dict[str, int]:
    """The business's categories: name key -> id."""
    rows = await conn.fetch(
        "SELECT name_key, category_id FROM category_names WHERE business_id = $1",
        business_id,
    )
    return {row["name_key"]: row["category_id"] for row in rows}


# An index lookup per name in any plan (batch_reads.py says why).
TAKEN = """
SELECT n.business_id, n.name_key
FROM unnest($1::bigint[], $2::text[]) AS w(business_id, name_key),
LATERAL (SELECT * FROM category_names n
         WHERE n.business_id = w.business_id AND n.name_key = w.name_key
         OFFSET 0) AS n
"""


async def taken(
    conn: asyncpg.Connection, commands: Sequence[c.LedgerCommand]
) -> set[tuple[int, str]]:
    """The (business id, name key) pairs the commands would create that exist."""
    wanted = [
        (command.business_id, name_key(command.name))
        for command in commands
        if isinstance(command, c.CreateCategory)
    ]
    if not wanted:
        return set()
    rows = await conn.fetch(
        TAKEN,
        [business for business, _ in wanted],
        [key for _, key in wanted],
    )
    return {(row["business_id"], row["name_key"]) for row in rows}


async def defaults(
    conn: asyncpg.Connection, commands: Sequence[c.LedgerCommand]
) -> dict[int, int]:
    """business id -> its "Uncategorised" category, for creates without category_id."""
    businesses = sorted(
        {
            command.business_id
            for command in commands
            if isinstance(command, c.CreateClient) and command.category_id is None
        }
    )
    if not businesses:
        return {}
    rows = await conn.fetch(
        "SELECT business_id, category_id FROM category_names"
        " WHERE business_id = ANY($1::bigint[]) AND name_key = $2",
        businesses,
        name_key(DEFAULT_CATEGORY),
    )
    return {row["business_id"]: row["category_id"] for row in rows}


class NameClaim(msgspec.Struct, frozen=True):
    business_id: int
    name_key: str
    category_id: int


class NameClaimedConcurrently(ConcurrencyConflict):
    """Another transaction claimed one of the names first."""

    def __init__(self) -> None:
        super().__init__("category name claimed concurrently")


async def claim(conn: asyncpg.Connection, claims: Sequence[NameClaim]) -> None:
    """Reserve new category names; a name another transaction claimed first is a
    NameClaimedConcurrently (the appender retries its batch, and the retry refuses
    that one command with 409)."""
    if not claims:
        return
    rows = await conn.fetch(
        "INSERT INTO category_names (business_id, name_key, category_id)"
        " SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])"
        " ON CONFLICT DO NOTHING RETURNING name_key",
        [claim.business_id for claim in claims],
        [claim.name_key for claim in claims],
        [claim.category_id for claim in claims],
    )
    if len(rows) != len(claims):
        raise NameClaimedConcurrently()
