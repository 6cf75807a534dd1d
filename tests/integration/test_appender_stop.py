"""Stopping the appender (the API's shutdown) finishes the commands already submitted:
each caller gets its own answer and every answered command is in the store; a command
submitted after the stop began is refused with a 503, never half-done."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest

from services.command_api.appender import Appender
from shared import events as e
from shared import pause_points
from shared.errors import ServiceStopping
from tests.integration.scenarios import (
    create_client,
    id_of,
    submit,
    transaction,
    wait_until,
)


async def test_stop_commits_and_answers_every_submitted_command(
    appenders: Callable[..., Appender],
    pool: asyncpg.Pool,
    business: dict[str, object],
) -> None:
    """Proves a stop drains the queue, by submitting 30 postings (several batches of
    at most 4) and stopping at once, before any has been answered: all 30 get their
    201, the stream holds exactly those 30 postings, and a posting submitted after
    the stop is refused with ServiceStopping."""
    appender = appenders(batch_size_max=4)
    business_id = id_of(business)
    client_id = await create_client(appender, business_id)
    postings = [
        asyncio.ensure_future(
            submit(appender, transaction(business_id, client_id, 100 + number))
        )
        for number in range(30)
    ]
    await asyncio.sleep(0)  # every submission is queued; none is answered yet
    assert not any(posting.done() for posting in postings)

    await appender.stop()

    results = [posting.result() for posting in postings]  # all done, no exception
    assert [result.status for result in results] == [201] * 30
    amounts = await pool.fetch(
        "SELECT (payload->>'amount_minor')::int AS amount FROM events"
        " WHERE stream_id = $1 AND type = 'transaction.posted' ORDER BY version",
        e.client_stream(client_id),
    )
    assert sorted(row["amount"] for row in amounts) == [100 + n for n in range(30)]
    with pytest.raises(ServiceStopping):
        await submit(appender, transaction(business_id, client_id, 1))


async def test_a_stop_past_its_grace_refuses_the_commands_it_never_took_up(
    appenders: Callable[..., Appender],
    pool: asyncpg.Pool,
    business: dict[str, object],
) -> None:
    """Proves no caller is left waiting when the grace runs out: the first posting's
    batch is held after its commit (a test pause point), 5 more postings queue
    behind it, and stop() with a short grace cuts the held batch off and answers
    each of the 5 with ServiceStopping (503), writing none of them."""
    appender = appenders(batch_size_max=1)
    business_id = id_of(business)
    client_id = await create_client(appender, business_id)
    pause_points.arm({"LEDGER_TEST_PAUSE_AT": "api.after_commit"})
    try:
        first = asyncio.ensure_future(
            submit(appender, transaction(business_id, client_id, 100))
        )
        await wait_until(
            lambda: _not_armed("api.after_commit"), "the first batch to be held"
        )
        queued = [
            asyncio.ensure_future(
                submit(appender, transaction(business_id, client_id, 200 + n))
            )
            for n in range(5)
        ]
        await asyncio.sleep(0)

        await asyncio.wait_for(appender.stop(grace_s=0.5), 10)
    finally:
        pause_points.disarm()

    for posting in queued:
        with pytest.raises(ServiceStopping):
            posting.result()
    first.cancel()
    amounts = await pool.fetch(
        "SELECT (payload->>'amount_minor')::int AS amount FROM events"
        " WHERE stream_id = $1 AND type = 'transaction.posted'",
        e.client_stream(client_id),
    )
    assert [row["amount"] for row in amounts] == [100]


async def _not_armed(point: str) -> bool:
    return not pause_points.armed(point)
