"""The ids new clients, accounts, categories and entries get: drawn from PostgreSQL
sequences, as many as a batch or an import needs, in one query before deciding.

A sequence never hands an id out twice, committed or not, so the ids are taken
outside the transaction that writes them; an aborted write leaves gaps, never reuse.
"""

from __future__ import annotations

import asyncpg

from shared.commands import DrawnIds, IdCounts

_DRAW = """
SELECT array(SELECT nextval('client_id_seq') FROM generate_series(1, $1)) AS clients,
       array(SELECT nextval('account_id_seq') FROM generate_series(1, $2)) AS accounts,
       array(SELECT nextval('category_id_seq') FROM generate_series(1, $3))
           AS categories,
       array(SELECT nextval('entry_id_seq') FROM generate_series(1, $4)) AS entries
"""


async def draw(conn: asyncpg.Connection | asyncpg.Pool, counts: IdCounts) -> DrawnIds:
    """Draw the ids `counts` asks for, in one query."""
    row = await conn.fetchrow(
        _DRAW, counts.clients, counts.accounts, counts.categories, counts.entries
    )
    return DrawnIds(row["clients"], row["accounts"], row["categories"], row["entries"])
