"""Chain-head checkpoints against tampering: a whole stream deleted after a checkpoint,
a checkpoint whose hash disagrees with its stream, and a stream re-chained with the
real key (an insider) after a checkpoint.

Same scenario and oracle as test_audit_tampering.py; each test takes a checkpoint
(shared/chain_checkpoints.take_checkpoint, what the relay and `ledger audit
checkpoint` run) once its events are readable, then tampers as the superuser.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from services.audit.report import Difference, Report
from services.audit.verify import verify
from services.businesses import provision_business
from services.command_api.appender import Appender
from shared.chain_checkpoints import take_checkpoint
from shared.config import settings_keyring
from shared.postgres import create_pool
from tests.integration.scenarios import (
    create_client,
    id_of,
    submit,
    transaction,
    wait_until_readable,
)
from tests.integration.tampering import (
    figures,
    forge_debit,
    forged_debit_figures,
    rechain,
    rewrite_payload,
    stream_rows,
)
from tests.integration.test_audit_verify import history, report_of, tamper
from tests.support.environment import Environment, create_environment, drop_environment


async def checkpointed(
    environment: Environment, pool: asyncpg.Pool, stream: str
) -> asyncpg.Record:
    """Take a checkpoint once the stream is readable; its chain_checkpoints row."""
    await wait_until_readable(pool, [stream])
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
                 deposit_minor=(None, 4000), transaction_lines=(None, 2)),
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
    once chain_checkpoints is rewritten too."""
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
        *forged_debit_figures(bid, stream),
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
        *forged_debit_figures(bid, stream),
    ]


@pytest.fixture
async def own(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    """A database of its own: the command records the heads of every stream in it."""
    env = await create_environment(*servers, tag="ckcli")
    yield env
    await drop_environment(env)


async def ledger_audit_checkpoint(environment: Environment) -> tuple[int, str]:
    """Run `ledger audit checkpoint` as a process; its exit status and output."""
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": environment.settings.database_url,
        "LEDGER_HMAC_KEY": environment.settings.hmac_key,
    }
    command = [sys.executable, "-m", "services.cli", "audit", "checkpoint"]
    done = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stderr == ""
    return done.returncode, done.stdout


_HEADS = """
SELECT DISTINCT ON (stream_id) stream_id, business_id, version, hash FROM events
WHERE type <> 'ledger.checkpoint' ORDER BY stream_id, version DESC
"""
_RECORDED = "SELECT stream_id, business_id, version, hash, checkpoint_id"
_RECORDED += " FROM chain_checkpoints ORDER BY stream_id"
_EVENTS = "SELECT stream_id, version, payload::text AS payload, metadata::text AS m"
_EVENTS += " FROM events WHERE type = 'ledger.checkpoint' ORDER BY stream_id, version"


async def recorded(pool: asyncpg.Pool) -> tuple[list[Any], list[Any]]:
    """chain_checkpoints rows, and the ledger.checkpoint events as plain values."""
    rows = [dict(row) for row in await pool.fetch(_RECORDED)]
    events = [
        (
            row["stream_id"],
            row["version"],
            msgspec.json.decode(row["payload"]),
            msgspec.json.decode(row["m"])["principal"],
        )
        for row in await pool.fetch(_EVENTS)
    ]
    return rows, events


def checkpoint_events(
    version: int, checkpoint_id: str, heads: list[Any]
) -> list[tuple[str, int, dict[str, object], str]]:
    """One ledger.checkpoint event per business, at `version` of its stream."""
    by_business: dict[int, list[dict[str, object]]] = {}
    for head in heads:
        by_business.setdefault(head["business_id"], []).append(
            {key: head[key] for key in ("stream_id", "version", "hash")}
        )
    return [
        (
            f"checkpoint-{business_id}",
            version,
            {"type": "ledger.checkpoint", "checkpoint_id": checkpoint_id,
             "heads": listed},
            "ledger:checkpoints",
        )
        for business_id, listed in sorted(by_business.items())
    ]  # fmt: skip


async def test_the_checkpoint_command_records_every_changed_head_once(
    own: Environment,
) -> None:
    """`ledger audit checkpoint` on two businesses (a client with a debit in one)
    records all three heads in chain_checkpoints and one ledger.checkpoint event per
    business; run again it records nothing; after one more debit, only that head."""
    first = id_of(await provision_business(own.settings, "Checkpoint A"))
    await provision_business(own.settings, "Checkpoint B")
    pool = await create_pool(own.settings.database_url, max_size=2)
    appender = Appender(pool, own.settings.hmac_key.encode(), 500)
    appender.start()
    try:
        client_id = await create_client(appender, first)
        await submit(appender, transaction(first, client_id, 500))
        await wait_until_readable(pool)
        assert await ledger_audit_checkpoint(own) == (
            0,
            "ledger: checkpointed 3 stream heads\n",
        )
        heads = [dict(row) for row in await pool.fetch(_HEADS)]
        rows, events = await recorded(pool)
        checkpoint_id = rows[0]["checkpoint_id"]
        assert rows == [head | {"checkpoint_id": checkpoint_id} for head in heads]
        assert events == checkpoint_events(1, checkpoint_id, heads)

        await wait_until_readable(pool)
        assert await ledger_audit_checkpoint(own) == (
            0,
            "ledger: checkpointed 0 stream heads\n",
        )
        assert await recorded(pool) == (rows, events)

        await submit(appender, transaction(first, client_id, 300))
        await wait_until_readable(pool)
        assert await ledger_audit_checkpoint(own) == (
            0,
            "ledger: checkpointed 1 stream heads\n",
        )
        stream = f"client-{client_id}"
        [head] = [dict(r) for r in await pool.fetch(_HEADS) if r["stream_id"] == stream]
        assert head["version"] == 3
        after, later = await recorded(pool)
        latest = next(r["checkpoint_id"] for r in after if r["stream_id"] == stream)
        assert latest != checkpoint_id
        assert after == [
            head | {"checkpoint_id": latest} if row["stream_id"] == stream else row
            for row in rows
        ]
        assert later == sorted([*events, *checkpoint_events(2, latest, [head])])
        async with pool.acquire() as conn:
            report = await verify(conn, settings_keyring(own.settings))
        assert report == Report(
            ok=True, businesses=2, streams=5, events=8, differences=[]
        )
    finally:
        await appender.stop()
        await pool.close()
