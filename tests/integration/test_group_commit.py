"""Group commit: commands submitted together share one transaction, each with its own
checks and its own result; one refusal never fails another."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg

from services.command_api import renderers
from services.command_api.appender import Appender
from services.command_api.submissions import Result
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
