"""Postings decided on cached states without a read (services/command_api/
batch_decider.py): the write's stream version proves an acceptance, and a refusal is
checked against the stream's head before it is answered."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import pytest

from services.command_api.appender import Appender
from shared import events as e
from shared.errors import ValidationFailed
from shared.store import postgres
from tests.integration.scenarios import (
    cents,
    create_client,
    decoded,
    deposit,
    id_of,
    stream_versions,
    submit,
    transaction,
)
from tests.support.environment import Environment


async def test_a_refusal_on_a_stale_cached_state_is_decided_again_at_the_head(
    pool: asyncpg.Pool,
    appenders: Callable[[], Appender],
    business: dict[str, object],
) -> None:
    """Process X caches a client with nothing deposited; process Y deposits 10.00;
    then X takes 5.00 out of the deposit. On its cached state X would refuse it (the
    deposit would go below zero); the refusal is checked against the stream's head,
    which moved, so X decides again there and accepts: version 3, 5.00 left."""
    business_id = id_of(business)
    x, y = appenders(), appenders()
    client_id = await create_client(x, business_id)

    await submit(y, deposit(business_id, client_id, 1_000, "debit"))
    taken = await submit(x, deposit(business_id, client_id, 500, "credit"))

    assert taken.status == 201 and taken.version == 3
    assert cents(decoded(taken.body)["deposit_after"]) == 500
    assert await stream_versions(pool, e.client_stream(client_id)) == [1, 2, 3]


async def test_a_refusal_at_the_head_stands(
    pool: asyncpg.Pool,
    appenders: Callable[[], Appender],
    business: dict[str, object],
) -> None:
    """The same credit with nothing deposited anywhere is refused after the check,
    and nothing is written."""
    business_id = id_of(business)
    x = appenders()
    client_id = await create_client(x, business_id)

    with pytest.raises(ValidationFailed):
        await submit(x, deposit(business_id, client_id, 500, "credit"))

    assert await stream_versions(pool, e.client_stream(client_id)) == [1]


async def test_postings_to_a_cached_client_write_without_reading(
    environment: Environment, business: dict[str, object]
) -> None:
    """After the creation (which reads, and fills the id reserve), each posting to
    the cached client is one statement, its INSERT; their entry ids follow one
    another in commit order."""
    business_id = id_of(business)
    statements: list[str] = []
    url = environment.settings.database_url
    async with await postgres.create_pool(url, max_size=1) as pool:
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: statements.append(record.query))
        appender = Appender(pool, environment.settings.hmac_key.encode(), 500)
        appender.start()
        try:
            client_id = await create_client(appender, business_id)
            statements.clear()
            posted = [
                await submit(appender, transaction(business_id, client_id, 100 * n))
                for n in (1, 2, 3)
            ]
        finally:
            await appender.stop()

    assert len(statements) == 3, statements
    assert all(s.lstrip().startswith("INSERT INTO events") for s in statements)
    ids = [decoded(result.body)["id"] for result in posted]
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2]
    balances = [cents(decoded(result.body)["balance_after"]) for result in posted]
    assert balances == [100, 300, 600]


async def test_a_client_two_processes_post_to_is_read_first_after_one_conflict(
    environment: Environment, business: dict[str, object]
) -> None:
    """Processes X and Y take turns posting to one client. X's first posting after
    Y's is decided on its cached state and its write conflicts; from then on X reads
    that client before deciding (it is contested), so each later posting is one
    INSERT, not a failed one and a retry: 10 postings by X, 11 INSERTs in all."""
    business_id = id_of(business)
    statements: list[str] = []
    url = environment.settings.database_url
    key = environment.settings.hmac_key.encode()
    async with (
        await postgres.create_pool(url, max_size=1) as x_pool,
        await postgres.create_pool(url, max_size=1) as y_pool,
    ):
        async with x_pool.acquire() as conn:
            conn.add_query_logger(lambda record: statements.append(record.query))
        x, y = Appender(x_pool, key, 500), Appender(y_pool, key, 500)
        x.start()
        y.start()
        try:
            client_id = await create_client(x, business_id)
            for _ in range(10):
                await submit(y, transaction(business_id, client_id, 100))
                last = await submit(x, transaction(business_id, client_id, 100))
        finally:
            await x.stop()
            await y.stop()

    inserts = [s for s in statements if "INSERT INTO events" in s]
    assert len(inserts) == 1 + 11  # the creation, then X's postings
    assert last.version == 21
    assert cents(decoded(last.body)["balance_after"]) == 2_000
