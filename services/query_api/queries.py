"""Read-model queries. The query API reads only read-model tables (and businesses)."""

from __future__ import annotations

import datetime as dt
import re

import asyncpg
import msgspec

from projections import progress
from shared.response_bodies import ClientFigures
from shared.store.api_keys import key_hash

CLIENT_COLUMNS = """
SELECT c.client_id, c.business_id, c.account_id, c.category_id,
       coalesce(cat.name, '') AS category, c.first_name, c.last_name, c.phone_number,
       c.business_name, c.business_address, c.business_phone, c.business_location,
       c.business_email, c.archived, c.created_at, c.updated_at,
       c.debit_minor, c.credit_minor, c.deposit_minor, c.deposit_account_id, c.version,
       c.erased
FROM rm_clients c LEFT JOIN rm_categories cat ON cat.category_id = c.category_id
WHERE c.business_id = $1 AND NOT c.deleted
"""


class ClientFilter(msgspec.Struct, frozen=True, kw_only=True):
    category_id: int | None = None
    archived: bool | None = None
    # Trimmed and checked text (query_parameters): names, phones and e-mail contain it.
    search: str | None = None
    limit: int | None = None
    offset: int = 0


def figures(row: asyncpg.Record, owner_id: int) -> ClientFigures:
    return ClientFigures(
        id=row["client_id"],
        owner_id=owner_id,
        business_id=row["business_id"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        phone_number=row["phone_number"],
        business_name=row["business_name"],
        business_address=row["business_address"],
        business_phone=row["business_phone"],
        business_location=row["business_location"],
        business_email=row["business_email"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        account_id=row["account_id"],
        category=row["category"],
        category_id=row["category_id"],
        deposit_minor=int(row["deposit_minor"]),
        deposit_account_id=row["deposit_account_id"],
        archived=row["archived"],
        debit_minor=int(row["debit_minor"]),
        credit_minor=int(row["credit_minor"]),
        erased=row["erased"],
    )


# The client with the position every projection had applied when it was read (one
# snapshot: the row reflects at least that position), in one round trip.
_CLIENT_AT = f"""
SELECT found.*, ({progress.position_applied_sql(2)}) AS read_position
FROM ({CLIENT_COLUMNS} AND c.client_id = $2) AS found
"""


async def get_client(
    pool: asyncpg.Pool, business_id: int, client_id: int
) -> asyncpg.Record | None:
    """The client's row, with `read_position` (read_position(), read with it)."""
    names, count = progress.position_applied_args()
    return await pool.fetchrow(_CLIENT_AT, business_id, client_id, names, count)


_SUMMARY = """
SELECT coalesce(sum(deposit_minor), 0) AS total_deposits,
       count(*) AS customer_count,
       count(*) FILTER (WHERE archived) AS archived_customers,
       count(*) FILTER (WHERE NOT archived) AS unarchived_customers,
       coalesce(sum(debit_minor - credit_minor), 0) AS total_balance
FROM rm_clients
WHERE business_id = $1 AND NOT deleted AND ($2::bigint IS NULL OR category_id = $2)
"""


async def summary(
    pool: asyncpg.Pool, business_id: int, category_id: int | None
) -> asyncpg.Record:
    row = await pool.fetchrow(_SUMMARY, business_id, category_id)
    assert row is not None
    return row


async def categories(pool: asyncpg.Pool, business_id: int) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT category_id, business_id, name, description, created_at, updated_at,"
        " customer_count FROM rm_categories WHERE business_id = $1"
        " ORDER BY category_id",
        business_id,
    )
    return rows


# Running balances are window sums in (date, position) order over all of the client's
# lines, then cut to the period: a back-dated posting moves every later balance_after.
_LINES = """
WITH lines AS (
    SELECT l.*, sum(CASE WHEN l.entry_type = 'debit' THEN l.amount_minor
                         ELSE -l.amount_minor END)
                OVER (ORDER BY l.date, l.position) AS running_minor
    FROM {table} l
    WHERE l.client_id = $1 AND l.business_id = $2
)
SELECT * FROM lines
WHERE ($3::date IS NULL OR date >= $3) AND ($4::date IS NULL OR date <= $4)
ORDER BY date, position
"""
_BEFORE = """
SELECT coalesce(sum(CASE WHEN entry_type = 'debit' THEN amount_minor
                         ELSE -amount_minor END), 0)
FROM {table} WHERE client_id = $1 AND business_id = $2 AND date < $3
"""


async def lines(
    pool: asyncpg.Pool,
    table: str,
    business_id: int,
    client_id: int,
    period: tuple[dt.date | None, dt.date | None],
) -> tuple[list[asyncpg.Record], int]:
    """A client's lines in the period with running totals, and the opening total."""
    assert table in ("rm_transactions", "rm_deposits")
    start, end = period
    rows = await pool.fetch(
        _LINES.format(table=table), client_id, business_id, start, end
    )
    opening = 0
    if start is not None:
        opening = int(
            await pool.fetchval(
                _BEFORE.format(table=table), client_id, business_id, start
            )
        )
    return rows, opening


# The export route's capability: new_bid() makes 43 URL-safe characters. Anything else
# is refused before it reaches PostgreSQL (a NUL byte in a text parameter is an error
# there, not a miss).
_BID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")


async def business_for_bid(pool: asyncpg.Pool, bid: str) -> int | None:
    """The id of the business whose export capability `bid` is, or None."""
    if not _BID_PATTERN.fullmatch(bid):
        return None
    business_id: int | None = await pool.fetchval(
        "SELECT business_id FROM businesses WHERE bid_hash = $1", key_hash(bid)
    )
    return business_id


async def export_chunk(
    pool: asyncpg.Pool,
    business_id: int,
    category_id: int | None,
    after_client_id: int,
    limit: int,
) -> list[asyncpg.Record]:
    """The next `limit` live clients after `after_client_id`, by id (keyset paging).

    Each chunk is one short statement on the (business_id, client_id) index, so an
    export holds no connection or snapshot while it writes the workbook: projectors
    and other readers never wait on it. The price is that chunks are read at slightly
    different moments, so a posting that lands mid-export shows in a later chunk's
    client and not in an earlier one's; every row is still one committed state.
    """
    rows: list[asyncpg.Record] = await pool.fetch(
        CLIENT_COLUMNS
        + " AND ($2::bigint IS NULL OR c.category_id = $2) AND c.client_id > $3"
        " ORDER BY c.client_id LIMIT $4",
        business_id,
        category_id,
        after_client_id,
        limit,
    )
    return rows


async def read_position(pool: asyncpg.Pool) -> int:
    """The global position every projection has applied up to (their lowest
    checkpoint; 0 before any): what a query answer reflects at least."""
    return await progress.position_applied(pool) or 0
