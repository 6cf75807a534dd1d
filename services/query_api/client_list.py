"""The client list's statements: the filters, search (client_search.py) and paging
of `GET /api/v3/clients`, and how many match in all."""

from __future__ import annotations

import asyncpg
import msgspec

from services.query_api import client_search
from services.query_api.queries import CLIENT_COLUMNS, ClientFilter


class ListStatements(msgspec.Struct, frozen=True):
    """The list's statements and their arguments (the page's: these, then
    `where.limit` and `where.offset`)."""

    page: str
    count: str
    args: list[object]
    # A search's page with the number of matches, in one statement (_SEARCHED_PAGE).
    searched_page: str


# A paged search in one statement: the matches are found alone (MATERIALIZED: their
# plan knows nothing of the page, so it is the trigram index, or the business's rows
# for a search with no trigram), counted, and cut to the page by id; then the page's
# rows are read by id. Planned with the page, the matches were found by walking every
# id in order (to skip a sort), 80 ms for 20,000 matches where the index takes 20;
# and the total needs no second statement.
_SEARCHED_PAGE = """
WITH matches AS MATERIALIZED (
    SELECT c.client_id FROM rm_clients c
    WHERE c.business_id = $1 AND NOT c.deleted{condition}
), page AS (
    SELECT client_id FROM matches ORDER BY client_id LIMIT ${limit} OFFSET ${offset}
)
SELECT found.*, (SELECT count(*) FROM matches) AS matched
FROM page CROSS JOIN LATERAL ({columns} AND c.client_id = page.client_id) AS found
ORDER BY page.client_id
"""


def client_list_statements(business_id: int, where: ClientFilter) -> ListStatements:
    """The list's statements for these filters (and search, when given)."""
    condition = (
        " AND ($2::bigint IS NULL OR c.category_id = $2)"
        " AND ($3::boolean IS NULL OR c.archived = $3)"
    )
    args: list[object] = [business_id, where.category_id, where.archived]
    if where.search is not None:
        # Only when given: a statement of its own, planned for the trigram index.
        searched, search_args = client_search.condition(where.search, len(args) + 1)
        condition += searched
        args += search_args
    page = len(args) + 1
    return ListStatements(
        page=f"{CLIENT_COLUMNS}{condition}"
        f" ORDER BY c.client_id LIMIT ${page} OFFSET ${page + 1}",
        count="SELECT count(*) FROM rm_clients c"
        f" WHERE c.business_id = $1 AND NOT c.deleted{condition}",
        args=args,
        searched_page=_SEARCHED_PAGE.format(
            condition=condition, limit=page, offset=page + 1, columns=CLIENT_COLUMNS
        ),
    )


async def list_clients(
    pool: asyncpg.Pool, business_id: int, where: ClientFilter
) -> tuple[list[asyncpg.Record], int]:
    """The page of clients asked for, by id, and how many match in all."""
    statements = client_list_statements(business_id, where)
    async with pool.acquire() as conn:
        if where.search is None:
            return await _page_and_total(conn, statements, where)
        # A search's statements are one text whatever is searched, and PostgreSQL
        # keeps a prepared statement's generic plan after five executions when it
        # looks no dearer: one plan for "Kwame" and for "@yahoo.com", though the
        # right one differs (the trigram index, or the business's rows for a search
        # with no trigram). Each search is planned for its own text.
        async with conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            if where.limit is None:
                return await _page_and_total(conn, statements, where)
            return await _searched_page(conn, statements, where)


async def _page_and_total(
    conn: asyncpg.Connection, statements: ListStatements, where: ClientFilter
) -> tuple[list[asyncpg.Record], int]:
    args = statements.args
    rows = await conn.fetch(statements.page, *args, where.limit, where.offset)
    if where.limit is None:
        return rows, len(rows)
    if 0 < len(rows) < where.limit or (not rows and where.offset == 0):
        # A page that is not full is the last one: the total needs no count.
        return rows, where.offset + len(rows)
    total: int = await conn.fetchval(statements.count, *args)
    return rows, total


async def _searched_page(
    conn: asyncpg.Connection, statements: ListStatements, where: ClientFilter
) -> tuple[list[asyncpg.Record], int]:
    args = statements.args
    rows = await conn.fetch(statements.searched_page, *args, where.limit, where.offset)
    if rows:
        return rows, rows[0]["matched"]
    if where.offset == 0:
        return rows, 0
    total: int = await conn.fetchval(statements.count, *args)  # a page past the last
    return rows, total
