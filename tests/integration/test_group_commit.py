"""Group commit: commands submitted together share one transaction, each with its own
checks and its own result; one refusal never fails another."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest

from services.command_api import renderers
from services.command_api.appender import Appender
from services.command_api.submissions import Outcome, Result
from shared import commands as c
from shared import events as e
from shared.errors import NotFound, ValidationFailed
from tests.integration.scenarios import (
    cents,
    create_client,
    decoded,
    deposit,
    id_of,
    metadata,
    render_client_id,
    stream_versions,
    submit,
    transaction,
)

UNKNOWN_CLIENT_ID = 9_000_000_000_000


async def _transaction_ids(pool: asyncpg.Pool, results: list[Result]) -> set[str]:
    positions = [result.position for result in results]
    rows = await pool.fetch(
        "SELECT DISTINCT transaction_id::text AS txid FROM events"
        " WHERE position = ANY($1::bigint[])",
        positions,
    )
    return {row["txid"] for row in rows}


async def test_one_refused_command_in_a_batch_leaves_the_others_committed(
    pool: asyncpg.Pool,
    appenders: Callable[[], Appender],
    business: dict[str, object],
) -> None:
    """Six commands submitted together land in one batch (one transaction id in the
    events table): a deposit credit beyond the deposit, a posting to a deleted client
    and one to an unknown client each get their own LedgerError, while the three
    others commit with their own results."""
    business_id = id_of(business)
    appender = appenders()
    alice = await create_client(appender, business_id, "Alice")
    bob = await create_client(appender, business_id, "Bob")
    gone = await create_client(appender, business_id, "Gone")
    await submit(appender, deposit(business_id, alice, 5_000, "debit"))
    await appender.submit(
        c.DeleteClient(business_id=business_id, client_id=gone),
        metadata(),
        renderers.deleted,
    )
    commands: list[c.PostTransaction | c.PostDeposit] = [
        transaction(business_id, alice, 1_000),
        deposit(business_id, alice, 5_001, "credit"),
        transaction(business_id, gone, 100),
        transaction(business_id, UNKNOWN_CLIENT_ID, 100),
        deposit(business_id, bob, 2_500, "debit"),
        transaction(business_id, alice, 2_000, "credit"),
    ]

    outcomes = await asyncio.gather(
        *(submit(appender, command) for command in commands), return_exceptions=True
    )

    beyond, deleted, unknown = outcomes[1], outcomes[2], outcomes[3]
    assert isinstance(beyond, ValidationFailed)
    assert beyond.errors == {
        "amount": ["The amount may not be greater than the deposit."]
    }
    assert (
        isinstance(deleted, NotFound) and deleted.message == f"Client {gone} not found"
    )
    assert isinstance(unknown, NotFound)
    assert unknown.message == f"Client {UNKNOWN_CLIENT_ID} not found"
    debit, bob_deposit, credit = outcomes[0], outcomes[4], outcomes[5]
    assert isinstance(debit, Result) and isinstance(bob_deposit, Result)
    assert isinstance(credit, Result)
    assert [debit.status, bob_deposit.status, credit.status] == [201, 201, 201]
    assert await _transaction_ids(pool, [debit, bob_deposit, credit]) != set()
    assert len(await _transaction_ids(pool, [debit, bob_deposit, credit])) == 1
    assert (debit.version, credit.version, bob_deposit.version) == (3, 4, 2)
    assert cents(decoded(debit.body)["balance_after"]) == 1_000
    assert cents(decoded(credit.body)["balance_after"]) == -1_000
    assert cents(decoded(bob_deposit.body)["deposit_after"]) == 2_500
    assert await stream_versions(pool, e.client_stream(alice)) == [1, 2, 3, 4]
    assert await stream_versions(pool, e.client_stream(gone)) == [1, 2]
    assert await stream_versions(pool, e.client_stream(UNKNOWN_CLIENT_ID)) == []


async def test_each_command_in_a_batch_answers_with_its_own_running_balance(
    pool: asyncpg.Pool,
    appenders: Callable[[], Appender],
    business: dict[str, object],
) -> None:
    """Four debits and two deposits on one client submitted together share one
    transaction; each response shows the balance right after its own posting (the
    running balance in position order), not the batch's final balance."""
    business_id = id_of(business)
    appender = appenders()
    client_id = await create_client(appender, business_id)
    commands: list[c.PostTransaction | c.PostDeposit] = [
        transaction(business_id, client_id, 100),
        deposit(business_id, client_id, 5_000, "debit"),
        transaction(business_id, client_id, 200),
        transaction(business_id, client_id, 400),
        deposit(business_id, client_id, 1_500, "credit"),
        transaction(business_id, client_id, 800),
    ]

    results = await asyncio.gather(*(submit(appender, command) for command in commands))

    assert len(await _transaction_ids(pool, list(results))) == 1
    assert [result.version for result in results] == [2, 3, 4, 5, 6, 7]
    bodies = [decoded(result.body) for result in results]
    assert [cents(bodies[i]["balance_after"]) for i in (0, 2, 3, 5)] == [
        100,
        300,
        700,
        1_500,
    ]
    assert [cents(bodies[i]["deposit_after"]) for i in (1, 4)] == [5_000, 3_500]


async def test_a_command_that_breaks_its_batch_fails_alone(
    pool: asyncpg.Pool,
    appenders: Callable[[], Appender],
    business: dict[str, object],
) -> None:
    """A command the database itself refuses (a NUL character, which PostgreSQL text
    cannot hold; the HTTP layer refuses it earlier, so it is submitted directly here)
    is batched with two good ones: the batch is retried one command at a time, the
    poisonous one fails alone and the two others commit."""
    business_id = id_of(business)
    appender = appenders()
    alice = await create_client(appender, business_id, "Alice")
    poison = c.CreateClient(business_id=business_id, business_name="Bad\x00name")

    outcomes = await asyncio.wait_for(
        asyncio.gather(
            submit(appender, transaction(business_id, alice, 700)),
            appender.submit(poison, metadata(), lambda outcome: (201, b"")),
            submit(appender, transaction(business_id, alice, 300)),
            return_exceptions=True,
        ),
        timeout=30,  # a hang check: every caller must get an answer
    )

    first, broken, second = outcomes
    assert isinstance(first, Result) and isinstance(second, Result)
    assert isinstance(broken, asyncpg.PostgresError)
    assert cents(decoded(first.body)["balance_after"]) == 700
    assert cents(decoded(second.body)["balance_after"]) == 1_000
    assert await stream_versions(pool, e.client_stream(alice)) == [1, 2, 3]


async def _next_id(pool: asyncpg.Pool, sequence: str) -> int:
    """Draw one id from the sequence: what the next batch draws comes after it."""
    drawn: int = await pool.fetchval(f"SELECT nextval('{sequence}')")
    return drawn


async def _events_of(pool: asyncpg.Pool, stream_ids: list[str]) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM events WHERE stream_id = ANY($1::text[])", stream_ids
    )
    return count


async def test_client_ids_drawn_by_a_failed_batch_never_take_postings(
    pool: asyncpg.Pool,
    appenders: Callable[[], Appender],
    business: dict[str, object],
) -> None:
    """Proves a failed batch leaves no phantom client in the appender's cache, by
    batching a good CreateClient with one PostgreSQL refuses (a NUL in its name): after
    the one-by-one retry, a posting to each client id the failed attempt drew (and to
    the poisonous retry's) answers NotFound and stores nothing, and the good client,
    created on its retry, takes a posting."""
    business_id = id_of(business)
    appender = appenders()
    before = await _next_id(pool, "client_id_seq")
    good = c.CreateClient(business_id=business_id, business_name="Good")
    poison = c.CreateClient(business_id=business_id, business_name="Bad\x00name")

    created, broken = await asyncio.wait_for(
        asyncio.gather(
            appender.submit(good, metadata(), render_client_id),
            appender.submit(poison, metadata(), render_client_id),
            return_exceptions=True,
        ),
        timeout=30,
    )

    assert isinstance(broken, asyncpg.PostgresError)
    assert isinstance(created, Result)
    # The batch drew before+1 (good) and before+2 (poison) and failed; alone, the good
    # command drew before+3 and committed, the poisonous one before+4 and failed.
    good_id = int(created.body)
    assert (good_id, await _next_id(pool, "client_id_seq")) == (before + 3, before + 5)
    phantoms = [before + 1, before + 2, before + 4]
    refused = await asyncio.gather(
        *(submit(appender, transaction(business_id, p, 1_000)) for p in phantoms),
        return_exceptions=True,
    )
    for phantom, outcome in zip(phantoms, refused, strict=True):
        assert isinstance(outcome, NotFound), (phantom, outcome)
        assert outcome.message == f"Client {phantom} not found"
    assert await _events_of(pool, [e.client_stream(p) for p in phantoms]) == 0
    posted = await submit(appender, transaction(business_id, good_id, 2_550))
    assert (posted.status, posted.version) == (201, 2)
    assert cents(decoded(posted.body)["balance_after"]) == 2_550
    assert await stream_versions(pool, e.client_stream(good_id)) == [1, 2]


async def test_category_ids_drawn_by_a_failed_batch_are_not_valid_categories(
    pool: asyncpg.Pool,
    appenders: Callable[[], Appender],
    business: dict[str, object],
) -> None:
    """Proves a failed batch leaves no phantom category in the appender's cache, by
    batching a good CreateCategory with one whose description PostgreSQL refuses (at
    the insert, after both were decided and cached): a client created in each
    category id the failed attempt drew is refused with 422 and nothing is stored,
    while the good category, created on its retry, takes a client."""
    business_id = id_of(business)
    appender = appenders()
    before = await _next_id(pool, "category_id_seq")

    def render_category_id(outcome: Outcome) -> tuple[int, bytes]:
        assert outcome.category is not None
        return 201, str(outcome.category.category_id).encode()

    created, broken = await asyncio.wait_for(
        asyncio.gather(
            appender.submit(
                c.CreateCategory(business_id=business_id, name="Wholesale"),
                metadata(),
                render_category_id,
            ),
            appender.submit(
                c.CreateCategory(
                    business_id=business_id, name="Retail", description="Bad\x00"
                ),
                metadata(),
                render_category_id,
            ),
            return_exceptions=True,
        ),
        timeout=30,
    )

    assert isinstance(broken, asyncpg.PostgresError)
    assert isinstance(created, Result)
    good_id = int(created.body)
    assert (good_id, await _next_id(pool, "category_id_seq")) == (
        before + 3,
        before + 5,
    )
    phantoms = [before + 1, before + 2, before + 4]
    clients_before = await _next_id(pool, "client_id_seq")
    for phantom in phantoms:
        command = c.CreateClient(
            business_id=business_id, business_name="Nowhere", category_id=phantom
        )
        with pytest.raises(ValidationFailed) as refused:
            await appender.submit(command, metadata(), render_client_id)
        assert refused.value.errors == {
            "category_id": ["The selected category id is invalid."]
        }
    assert await _events_of(pool, [e.category_stream(p) for p in phantoms]) == 0
    clients = [e.client_stream(clients_before + n) for n in (1, 2, 3)]
    assert await _events_of(pool, clients) == 0
    command = c.CreateClient(
        business_id=business_id, business_name="Somewhere", category_id=good_id
    )
    client_id = int((await appender.submit(command, metadata(), render_client_id)).body)
    [stored] = await pool.fetch(
        "SELECT payload->>'category_id' AS category_id FROM events"
        " WHERE stream_id = $1",
        e.client_stream(client_id),
    )
    assert int(stored["category_id"]) == good_id
