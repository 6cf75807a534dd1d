"""Chain-head checkpoints against tampering: a whole stream deleted after a checkpoint,
a checkpoint whose hash disagrees with its stream, and a stream re-chained with the
real key (an insider) after a checkpoint.

Same scenario and oracle as test_audit_tampering.py; each test takes a checkpoint
(shared/chain_checkpoints.take_checkpoint, what the relay and `ledger audit
checkpoint` run) once its events are readable, then tampers as the superuser.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from services.audit.report import Difference
from shared.store.chain_checkpoints import take_checkpoint
from tests.integration.audit_history import history, report_of, tamper
from tests.integration.tampering import (
    figures,
    forge_debit,
    forged_debit_figures,
    rechain,
    rewrite_payload,
    stored_digest,
    stream_rows,
)
from tests.support.environment import Environment


async def checkpointed(
    environment: Environment, pool: asyncpg.Pool, stream: str
) -> asyncpg.Record:
    """Take a checkpoint once the stream is readable; its chain_checkpoints row."""
    async with pool.acquire() as conn:
        assert await take_checkpoint(conn, environment.settings.hmac_key.encode()) > 0
    row = await pool.fetchrow(
        "SELECT version, hash, checkpoint_id FROM chain_checkpoints"
        " WHERE stream_id = $1",
        stream,
    )
    assert row is not None
    return row


def checkpoint_difference(
    last: Any, source: str, expected: str, found: str
) -> Difference:
    return Difference(
        kind="checkpoint",
        business_id=last["business_id"],
        stream_id=last["stream_id"],
        position=last["position"],
        version=last["version"],
        field=f"hash (checkpoint {source})",
        expected=expected,
        found=found,
    )


async def test_a_whole_stream_deleted_after_a_checkpoint_is_a_short_stream(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """Every event of `first` deleted after a checkpoint: the stream ends at 0 below
    its checkpointed head 5 (`short`, from chain_checkpoints, then from the
    ledger.checkpoint event once that row is gone too), and its read-model rows are
    named as having no events behind them."""
    ids = await history(service, business)
    bid, stream = business["business_id"], f"client-{ids['first']}"
    checkpoint = await checkpointed(environment, pool, stream)
    assert checkpoint["version"] == 5
    await tamper(admin, "DELETE FROM events WHERE stream_id = $1", stream)

    def short(source: str) -> Difference:
        return Difference(
            kind="short",
            stream_id=stream,
            version=5,
            field=f"last version (checkpoint {source})",
            expected=5,
            found=0,
        )

    read_models = [
        *figures(bid, stream, "client", row=("absent", "present")),
        *figures(bid, f"category-{ids['category']}", "category",
                 customer_count=(0, 1)),
        *figures(bid, stream, "summary", customers=(None, 1),
                 total_balance_minor=(None, 12975), total_deposit_minor=(None, 4000)),
        *figures(bid, stream, "statement", credit_minor=(None, 2025),
                 debit_minor=(None, 15000), deposit_lines=(None, 1),
                 deposit_minor=(None, 4000),
                 transaction_digest=(None, await stored_digest(admin, stream)),
                 transaction_lines=(None, 2)),
    ]  # fmt: skip
    report = await report_of(environment, pool, business)
    assert report.differences == [short("chain_checkpoints"), *read_models]
    # Left: two categories, the deleted client `second` and the checkpoint stream.
    assert (report.streams, report.events) == (4, 5)

    await tamper(admin, "DELETE FROM chain_checkpoints WHERE stream_id = $1", stream)
    report = await report_of(environment, pool, business)
    assert report.differences == [short(checkpoint["checkpoint_id"]), *read_models]


async def test_a_checkpoint_hash_that_differs_from_its_stream_is_named(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """A chain_checkpoints row whose hash was changed: one `checkpoint` difference at
    the head's event (version 5), expected the recorded hash, found the stored one;
    the ledger.checkpoint event's copy still agrees with the stream."""
    ids = await history(service, business)
    stream = f"client-{ids['first']}"
    await checkpointed(environment, pool, stream)
    await tamper(
        admin,
        "UPDATE chain_checkpoints SET hash = $2 WHERE stream_id = $1",
        stream,
        "f" * 64,
    )
    last = (await stream_rows(admin, stream))[-1]
    report = await report_of(environment, pool, business)
    assert report.differences == [
        checkpoint_difference(last, "chain_checkpoints", "f" * 64, last["hash"])
    ]


async def test_a_stream_rechained_with_the_real_key_is_caught_by_its_checkpoint(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """An insider holding the key changes `first`'s debit to 15.00 and re-chains the
    stream after a checkpoint: every hash verifies, but the head's hash differs from
    the checkpoint's (`checkpoint`), and still from the ledger.checkpoint event's copy
    once chain_checkpoints is rewritten too; only rewriting and re-chaining that
    event as well leaves the chains clean (a limit the README states)."""
    ids = await history(service, business)
    bid, stream = business["business_id"], f"client-{ids['first']}"
    checkpoint = await checkpointed(environment, pool, stream)
    before = await stream_rows(admin, stream)
    await rewrite_payload(admin, before[1]["position"], forge_debit)
    await rechain(admin, stream, environment.settings.hmac_key.encode())
    last = (await stream_rows(admin, stream))[-1]
    assert last["hash"] != checkpoint["hash"]
    report = await report_of(environment, pool, business)
    assert report.differences == [
        checkpoint_difference(
            last, "chain_checkpoints", checkpoint["hash"], last["hash"]
        ),
        *await forged_debit_figures(admin, bid, stream),
    ]

    await tamper(
        admin,
        "UPDATE chain_checkpoints SET hash = $2 WHERE stream_id = $1",
        stream,
        last["hash"],
    )
    report = await report_of(environment, pool, business)
    assert report.differences == [
        checkpoint_difference(
            last, checkpoint["checkpoint_id"], checkpoint["hash"], last["hash"]
        ),
        *await forged_debit_figures(admin, bid, stream),
    ]

    # With the key, the ledger.checkpoint event can be rewritten and its stream
    # re-chained too: the chain evidence is gone, as the README's threat model says
    # (only a subscriber's copy would disagree); the read models still tell.
    def new_head(payload: dict[str, Any]) -> None:
        for head in payload["heads"]:
            if head["stream_id"] == stream:
                head["hash"] = last["hash"]

    [copy] = await stream_rows(admin, f"checkpoint-{bid}")
    await rewrite_payload(admin, copy["position"], new_head)
    await rechain(admin, f"checkpoint-{bid}", environment.settings.hmac_key.encode())
    report = await report_of(environment, pool, business)
    assert report.differences == await forged_debit_figures(admin, bid, stream)
