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
