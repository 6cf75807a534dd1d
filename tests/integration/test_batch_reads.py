"""The appender's one round trip of reads per batch (services/command_api/
batch_reads.py): several streams caught up at once, stored answers replayed beside
new commands, and a category named only by the caught-up events read after it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import msgspec

from services.command_api.appender import Appender
from services.command_api.submissions import IdempotencyClaim, Outcome
from shared import commands as c
from shared.errors import IdempotencyConflict
from tests.integration.scenarios import (
    cents,
    create_client,
    decoded,
    id_of,
    metadata,
    submit,
    transaction,
)


async def test_one_batch_catches_up_several_streams_and_replays_stored_answers(
    appenders: Callable[[], Appender], business: dict[str, object]
) -> None:
    """Process Y posts three debits to one client and two to another, and answers
    two keyed debits; then process X, whose cache holds both clients at version 1,
    gets one batch holding a debit on each client, both keyed retries and a key
    reused with another amount: each debit lands on its stream's head with every
    earlier debit in its balance, the retries replay Y's answers and the reuse is
    refused."""
    business_id = id_of(business)
    x, y = appenders(), appenders()
    first = await create_client(x, business_id)
    second = await create_client(x, business_id)
    for client_id, amounts in ((first, (100, 200, 300)), (second, (10, 20))):
        for amount in amounts:
            await submit(y, transaction(business_id, client_id, amount))
    keys = [IdempotencyClaim(f"k-{uuid.uuid4()}", f"hash-{n}") for n in range(2)]
    answered = [
        await submit(y, transaction(business_id, first, 5), keys[0]),
        await submit(y, transaction(business_id, second, 7), keys[1]),
    ]
    reused = IdempotencyClaim(keys[0].key, "another request")
    outcomes = await asyncio.gather(
        submit(x, transaction(business_id, first, 1_000)),
        submit(x, transaction(business_id, second, 2_000)),
        submit(x, transaction(business_id, first, 5), keys[0]),
        submit(x, transaction(business_id, second, 7), keys[1]),
        submit(x, transaction(business_id, first, 9), reused),
        return_exceptions=True,
    )
    on_first, on_second, *replays, refused = outcomes
    assert not isinstance(on_first, BaseException)
    assert not isinstance(on_second, BaseException)
    assert (on_first.version, on_second.version) == (6, 5)
    assert cents(decoded(on_first.body)["balance_after"]) == 1_605
    assert cents(decoded(on_second.body)["balance_after"]) == 2_037
    for replay, first_answer in zip(replays, answered, strict=True):
        assert not isinstance(replay, BaseException)
        assert replay.replayed and replay.body == first_answer.body
    assert isinstance(refused, IdempotencyConflict)


def _category_id(outcome: Outcome) -> tuple[int, bytes]:
    assert outcome.category is not None
    return 201, str(outcome.category.category_id).encode()


def _category_name(outcome: Outcome) -> tuple[int, bytes]:
    assert outcome.client is not None and outcome.category is not None
    return 200, msgspec.json.encode([outcome.client.version, outcome.category.name])


async def test_a_category_named_only_by_caught_up_events_is_read_before_deciding(
    appenders: Callable[[], Appender], business: dict[str, object]
) -> None:
    """Process X caches a client in its default category; process Y creates a
    category and moves the client to it. X's next command on the client learns the
    move from the batch's catch-up, reads that category (which X never saw), and
    renders the client in it."""
    business_id = id_of(business)
    x, y = appenders(), appenders()
    client_id = await create_client(x, business_id)
    name = f"Moved away {uuid.uuid4().hex[:8]}"
    created = await y.submit(
        c.CreateCategory(business_id=business_id, name=name), metadata(), _category_id
    )
    moved = c.UpdateClient(
        business_id=business_id, client_id=client_id, category_id=int(created.body)
    )
    await y.submit(moved, metadata(), _category_name)
    renamed = c.UpdateClient(
        business_id=business_id, client_id=client_id, first_name="Ama"
    )
    result = await x.submit(renamed, metadata(), _category_name)
    assert msgspec.json.decode(result.body) == [3, name]
