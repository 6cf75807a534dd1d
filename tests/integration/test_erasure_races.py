"""Erasure against what could slip past it: an answer kept for an Idempotency-Key by a
command that wrote no event (nothing orders it against the erasure but the key's
row), and a key deleted without an erasure."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from services.command_api import commit as commit_module
from services.command_api import idempotency, renderers
from services.command_api.appender import Appender
from services.command_api.submissions import IdempotencyClaim
from shared import commands as c
from shared import events as e
from shared.store.api_keys import Business
from tests.integration.audit_history import report_of, tamper
from tests.integration.scenarios import blocked_on_lock, id_of, metadata, wait_until
from tests.support.environment import Environment


def _business(business: dict[str, Any]) -> Business:
    return Business(
        business_id=id_of(business),
        owner_id=business["owner_id"],
        name="b",
        currency="GHS",
    )


def _held_once_before_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[asyncio.Event, asyncio.Event]:
    """The next transaction to reach its COMMIT waits there: set when it is there,
    and the event that lets it go on."""
    reached, release = asyncio.Event(), asyncio.Event()
    real = commit_module.pause_points.pause

    async def hold_once(point: str) -> None:
        if point == "api.before_commit" and not reached.is_set():
            reached.set()
            await release.wait()
        await real(point)

    monkeypatch.setattr(commit_module.pause_points, "pause", hold_once)
    return reached, release


async def test_an_answer_kept_while_its_client_is_erased_loses_its_fields(
    admin: asyncpg.Connection,
    appenders: Callable[[], Appender],
    business: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Process X keeps a keyed answer of a no-op (unarchive an unarchived client: no
    event) and holds before its COMMIT; process Y erases the client meanwhile: Y's
    key deletion waits for X, and X's kept answer ends with its fields null."""
    business_id = id_of(business)
    x, y = appenders(), appenders()
    marker = str(uuid.uuid4().int)[-10:]
    created = await x.submit(
        c.CreateClient(business_id=business_id, business_name=f"Held {marker}"),
        metadata(),
        renderers.client(_business(business), 201),
    )
    client_id = json.loads(created.body)["id"]
    reached, release = _held_once_before_commit(monkeypatch)
    key = f"noop-{uuid.uuid4()}"
    noop = asyncio.ensure_future(
        x.submit(
            c.SetArchived(business_id=business_id, client_id=client_id, archived=False),
            metadata(key),
            renderers.client(_business(business), 200),
            IdempotencyClaim(key, "same-request"),
        )
    )
    await asyncio.wait_for(reached.wait(), 10)
    erase = asyncio.ensure_future(
        y.submit(
            c.EraseClient(business_id=business_id, client_id=client_id),
            metadata(),
            renderers.client(_business(business), 200),
        )
    )
    await wait_until(
        lambda: blocked_on_lock(admin, "DELETE FROM client_keys"),
        "the erasure to wait for the kept answer's transaction",
    )
    release.set()
    answered, erased = await asyncio.wait_for(asyncio.gather(noop, erase), 10)

    assert json.loads(answered.body)["business_name"] == f"Held {marker}"
    assert json.loads(erased.body)["erased"] is True
    kept = await admin.fetchval(
        "SELECT body FROM idempotency_keys WHERE business_id = $1 AND key = $2",
        business_id,
        key,
    )
    assert marker.encode() not in kept
    assert json.loads(kept)["business_name"] is None


async def test_a_key_goes_only_with_its_erasure_and_the_audit_names_one_gone(
    environment: Environment,
    pool: asyncpg.Pool,
    admin: asyncpg.Connection,
    appenders: Callable[[], Appender],
    business: dict[str, Any],
) -> None:
    """The service role cannot delete a key without a client.erased event; a key
    deleted anyway (as the superuser, triggers off) is a `key` difference."""
    business_id = id_of(business)
    created = await appenders().submit(
        c.CreateClient(business_id=business_id, business_name="Kept"),
        metadata(),
        renderers.client(_business(business), 201),
    )
    stream = e.client_stream(json.loads(created.body)["id"])
    delete = "DELETE FROM client_keys WHERE business_id = $1 AND stream_id = $2"
    with pytest.raises(asyncpg.RaiseError, match="goes only with its client.erased"):
        await pool.execute(delete, business_id, stream)

    await tamper(admin, delete, business_id, stream)
    report = await report_of(environment, pool, business)

    assert [(d.kind, d.stream_id, d.field, d.found) for d in report.differences][
        :1
    ] == [("key", stream, "client_keys", "missing")]


async def test_an_answer_kept_after_its_client_was_erased_is_kept_nulled(
    admin: asyncpg.Connection,
    appenders: Callable[[], Appender],
    business: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Process X decided a keyed no-op on its cached state; process Y's erasure
    commits just before X keeps the answer: X finds no key row to lock, and keeps the
    answer with its fields null."""
    business_id = id_of(business)
    x, y = appenders(), appenders()
    created = await x.submit(
        c.CreateClient(business_id=business_id, business_name="Late Ltd"),
        metadata(),
        renderers.client(_business(business), 201),
    )
    client_id = json.loads(created.body)["id"]
    real = idempotency.store_responses

    async def erased_first(conn: asyncpg.Connection, answers: Any) -> None:
        if any(answer.claim is not None for answer in answers):
            await y.submit(
                c.EraseClient(business_id=business_id, client_id=client_id),
                metadata(),
                renderers.client(_business(business), 200),
            )
        await real(conn, answers)

    monkeypatch.setattr(idempotency, "store_responses", erased_first)
    key = f"late-{uuid.uuid4()}"
    answered = await x.submit(
        c.SetArchived(business_id=business_id, client_id=client_id, archived=False),
        metadata(key),
        renderers.client(_business(business), 200),
        IdempotencyClaim(key, "same-request"),
    )

    assert json.loads(answered.body)["business_name"] == "Late Ltd"  # as decided
    kept = await admin.fetchval(
        "SELECT body FROM idempotency_keys WHERE business_id = $1 AND key = $2",
        business_id,
        key,
    )
    assert json.loads(kept)["business_name"] is None
