"""`ledger audit checkpoint`, run as a real process on a database of its own, so
every head it records is known: what it prints, the chain_checkpoints rows and the
ledger.checkpoint events it appends, and what a second run adds.
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

from services.audit.report import Report
from services.audit.verify import verify
from services.cli.businesses import provision_business
from services.command_api.appender import Appender
from shared.key_settings import settings_keyring
from shared.store.postgres import create_pool
from tests.integration.scenarios import (
    create_client,
    id_of,
    submit,
    transaction,
)
from tests.support.environment import Environment, create_environment, drop_environment


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
    command = [sys.executable, "-m", "services.cli.main", "audit", "checkpoint"]
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
        assert await ledger_audit_checkpoint(own) == (
            0,
            "ledger: checkpointed 3 stream heads\n",
        )
        heads = [dict(row) for row in await pool.fetch(_HEADS)]
        rows, events = await recorded(pool)
        checkpoint_id = rows[0]["checkpoint_id"]
        assert rows == [head | {"checkpoint_id": checkpoint_id} for head in heads]
        assert events == checkpoint_events(1, checkpoint_id, heads)

        assert await ledger_audit_checkpoint(own) == (
            0,
            "ledger: checkpointed 0 stream heads\n",
        )
        assert await recorded(pool) == (rows, events)

        await submit(appender, transaction(first, client_id, 300))
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
