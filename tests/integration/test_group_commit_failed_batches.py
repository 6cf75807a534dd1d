"""Group commit when a batch fails in the database: the ids its commands drew are
never valid afterwards, neither as clients that take postings nor as categories, and
the good commands of the batch still commit on their retry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest

from services.command_api.appender import Appender
from services.command_api.submissions import Outcome, Result
from shared import commands as c
from shared import events as e
from shared.errors import NotFound, ValidationFailed
from tests.integration.scenarios import (
    cents,
    decoded,
    id_of,
    metadata,
    render_client_id,
    stream_versions,
    submit,
    transaction,
)


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


def _render_category_id(outcome: Outcome) -> tuple[int, bytes]:
    assert outcome.category is not None
    return 201, str(outcome.category.category_id).encode()


async def _good_and_broken_categories(
    appender: Appender, business_id: int
) -> tuple[object, object]:
    """A good CreateCategory batched with one whose description PostgreSQL refuses
    (at the insert, after both were decided and cached): each one's outcome."""
    created, broken = await asyncio.wait_for(
        asyncio.gather(
            appender.submit(
                c.CreateCategory(business_id=business_id, name="Wholesale"),
                metadata(),
                _render_category_id,
            ),
            appender.submit(
                c.CreateCategory(
                    business_id=business_id, name="Retail", description="Bad\x00"
                ),
                metadata(),
                _render_category_id,
            ),
            return_exceptions=True,
        ),
        timeout=30,
    )
    return created, broken


async def _assert_no_client_takes(
    appender: Appender, business_id: int, phantoms: list[int]
) -> None:
    """A client created in each of these category ids is refused with 422."""
    for phantom in phantoms:
        command = c.CreateClient(
            business_id=business_id, business_name="Nowhere", category_id=phantom
        )
        with pytest.raises(ValidationFailed) as refused:
            await appender.submit(command, metadata(), render_client_id)
        assert refused.value.errors == {
            "category_id": ["The selected category id is invalid."]
        }


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

    created, broken = await _good_and_broken_categories(appender, business_id)

    assert isinstance(broken, asyncpg.PostgresError)
    assert isinstance(created, Result)
    good_id = int(created.body)
    assert (good_id, await _next_id(pool, "category_id_seq")) == (
        before + 3,
        before + 5,
    )
    phantoms = [before + 1, before + 2, before + 4]
    clients_before = await _next_id(pool, "client_id_seq")
    await _assert_no_client_takes(appender, business_id, phantoms)
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
