"""The appender's reads and writes around a batch, one round trip each.

Everything written here is written inside the batch's transaction, after the states
were read, so that the transaction's first write (which fixes its transaction id, the
relay's ordering key) comes after everything it decided on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import asyncpg
import msgspec

from services.command_api.stream_states import StreamStates
from services.command_api.submissions import (
    Decided,
    IdempotencyClaim,
    Result,
    Submission,
)
from shared import commands as c
from shared import domain
from shared import events as e
from shared.errors import ConcurrencyConflict
from shared.hash_chain import GENESIS

__all__ = ["GENESIS"]
DEFAULT_CATEGORY = "Uncategorised"


def name_key(name: str) -> str:
    """Category names are unique per business ignoring case and surrounding spaces."""
    return name.strip().casefold()


def streams_of(commands: Iterable[c.LedgerCommand]) -> set[str]:
    """The existing streams the commands address (creations address new ones)."""
    return {
        e.client_stream(command.client_id)
        for command in commands
        if not isinstance(command, c.CreateCategory | c.CreateClient)
    }


def category_streams(batch: Sequence[Submission], states: StreamStates) -> set[str]:
    """Every category a command names, and each addressed client's own category."""
    needed: set[str] = set()
    for submission in batch:
        command = submission.command
        target = getattr(command, "category_id", None)
        if isinstance(target, int):
            needed.add(e.category_stream(target))
        if isinstance(command, c.CreateCategory | c.CreateClient):
            continue
        state = states.get(e.client_stream(command.client_id))
        if isinstance(state, domain.ClientState):
            needed.add(e.category_stream(state.category_id))
    return needed


# The commands that post an entry (a transaction, a deposit posting or a reversal):
# each draws one id from entry_id_seq.
ENTRY_COMMANDS = (
    c.PostTransaction,
    c.PostDeposit,
    c.ReverseTransaction,
    c.ReverseDeposit,
)
_ALLOCATE = """
SELECT array(SELECT nextval('client_id_seq') FROM generate_series(1, $1)) AS clients,
       array(SELECT nextval('account_id_seq') FROM generate_series(1, $2)) AS accounts,
       array(SELECT nextval('category_id_seq') FROM generate_series(1, $3))
           AS categories,
       array(SELECT nextval('entry_id_seq') FROM generate_series(1, $4)) AS entries
"""


async def allocate_ids(
    conn: asyncpg.Connection, commands: Sequence[c.LedgerCommand]
) -> list[c.NewIds]:
    """Draw the ids each command may need from the sequences, in one query."""
    clients = sum(isinstance(command, c.CreateClient) for command in commands)
    deposits = sum(isinstance(command, c.PostDeposit) for command in commands)
    categories = sum(isinstance(command, c.CreateCategory) for command in commands)
    entries = sum(isinstance(command, ENTRY_COMMANDS) for command in commands)
    row = await conn.fetchrow(
        _ALLOCATE, clients, clients + deposits, categories, entries
    )
    client_ids = iter(row["clients"])
    account_ids = iter(row["accounts"])
    category_ids = iter(row["categories"])
    entry_ids = iter(row["entries"])
    allocated: list[c.NewIds] = []
    for command in commands:
        if isinstance(command, c.CreateClient):
            ids = c.NewIds(client_id=next(client_ids), account_id=next(account_ids))
        elif isinstance(command, c.CreateCategory):
            ids = c.NewIds(category_id=next(category_ids))
        elif isinstance(command, c.PostDeposit):
            ids = c.NewIds(
                entry_id=next(entry_ids), deposit_account_id=next(account_ids)
            )
        elif isinstance(command, ENTRY_COMMANDS):
            ids = c.NewIds(entry_id=next(entry_ids))
        else:
            ids = c.NewIds()
        allocated.append(ids)
    return allocated


async def taken_names(
    conn: asyncpg.Connection, commands: Sequence[c.LedgerCommand]
) -> set[tuple[int, str]]:
    wanted = [
        (command.business_id, name_key(command.name))
        for command in commands
        if isinstance(command, c.CreateCategory)
    ]
    if not wanted:
        return set()
    rows = await conn.fetch(
        "SELECT n.business_id, n.name_key FROM category_names n"
        " JOIN unnest($1::bigint[], $2::text[]) AS w(business_id, name_key)"
        " USING (business_id, name_key)",
        [business for business, _ in wanted],
        [key for _, key in wanted],
    )
    return {(row["business_id"], row["name_key"]) for row in rows}


async def default_categories(
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


async def claim_names(conn: asyncpg.Connection, decided: Sequence[Decided]) -> None:
    """Reserve new category names; a name another process claimed first is a conflict
    the batch retries (and the retry then refuses that one command with 409)."""
    claims = [item for item in decided if item.name_key is not None]
    if not claims:
        return
    rows = await conn.fetch(
        "INSERT INTO category_names (business_id, name_key, category_id)"
        " SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])"
        " ON CONFLICT DO NOTHING RETURNING name_key",
        [item.submission.command.business_id for item in claims],
        [item.name_key for item in claims],
        [_category_id(item) for item in claims],
    )
    if len(rows) != len(claims):
        raise ConcurrencyConflict("category name claimed concurrently")


def _category_id(item: Decided) -> int:
    assert item.outcome.category is not None
    return item.outcome.category.category_id


class StoredResponse(msgspec.Struct, frozen=True):
    request_hash: str
    result: Result


async def stored_responses(
    conn: asyncpg.Connection, batch: Sequence[Submission]
) -> dict[tuple[int, str], StoredResponse]:
    claims = [
        (submission.command.business_id, submission.idempotency.key)
        for submission in batch
        if submission.idempotency is not None
    ]
    if not claims:
        return {}
    rows = await conn.fetch(
        "SELECT k.business_id, k.key, k.request_hash, k.status, k.body, k.position"
        " FROM idempotency_keys k"
        " JOIN unnest($1::bigint[], $2::text[]) AS w(business_id, key)"
        " USING (business_id, key)",
        [business for business, _ in claims],
        [key for _, key in claims],
    )
    return {
        (row["business_id"], row["key"]): StoredResponse(
            row["request_hash"],
            Result(
                status=row["status"],
                body=bytes(row["body"]),
                position=row["position"] or None,
                replayed=True,
            ),
        )
        for row in rows
    }


async def store_responses(
    conn: asyncpg.Connection, decided: Sequence[Decided], results: Sequence[Result]
) -> None:
    """Keep each keyed command's response, in the transaction of its events."""
    keyed = [
        (item.submission, result)
        for item, result in zip(decided, results, strict=True)
        if item.submission.idempotency is not None
    ]
    if not keyed:
        return
    rows = await conn.fetch(
        "INSERT INTO idempotency_keys"
        " (business_id, key, request_hash, status, body, position)"
        " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::integer[],"
        " $5::bytea[], $6::bigint[])"
        " ON CONFLICT DO NOTHING RETURNING key",
        [submission.command.business_id for submission, _ in keyed],
        [_claim(submission).key for submission, _ in keyed],
        [_claim(submission).request_hash for submission, _ in keyed],
        [result.status for _, result in keyed],
        [result.body for _, result in keyed],
        [result.position or 0 for _, result in keyed],
    )
    if len(rows) != len(keyed):
        raise ConcurrencyConflict("idempotency key committed concurrently")


def _claim(submission: Submission) -> IdempotencyClaim:
    assert submission.idempotency is not None
    return submission.idempotency


async def record_accepted(pool: asyncpg.Pool, business_id: int, key: str) -> None:
    """The first answer to a keyed command was 202 (not yet visible): store that, so a
    retry replays the same status as well as the same body."""
    await pool.execute(
        "UPDATE idempotency_keys SET status = 202 WHERE business_id = $1 AND key = $2",
        business_id,
        key,
    )
