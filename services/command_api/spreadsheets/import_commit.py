"""Hops 2 and 3 for spreadsheets: decide an import's rows, then commit them.

Everything is decided, chained and encoded before BEGIN, in a worker thread: the rows
become commands decided by the kernel's rules (shared/decide_import.py), their events
are chained like every other (shared/store/new_events.py) and encoded for COPY. The
transaction is then the one every write goes through (commit.py), with the import's
own check and row (import_store.py). Its COPY holds the commit-order lock (migration
0011) until its COMMIT, and every other writer's events wait for that lock meanwhile:
so the transaction does nothing but stream rows already encoded.

The import takes a pooled connection of its own and never the appender's queue: a
100,000-row import must not make the postings behind it wait.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time
from collections.abc import Mapping

import asyncpg
import msgspec

from services.command_api import id_sequences
from services.command_api.category_names import NameClaim, NameClaimedConcurrently
from services.command_api.commit import CommitOutcomeUnknown, Write, commit
from services.command_api.idempotency import Answer, KeyCommittedConcurrently
from services.command_api.spreadsheets import import_store
from services.command_api.spreadsheets.import_store import ImportRecord
from services.command_api.stream_states import StreamStates
from services.command_api.submissions import IdempotencyClaim, Result
from shared import commands as c
from shared import domain
from shared import events as e
from shared.decide_import import (
    categories_used,
    decide_import,
    ids_needed_by,
    new_category_names,
)
from shared.errors import CommitUnconfirmed, Conflict
from shared.personal_data import MasterKey
from shared.store.new_events import (
    CopyRows,
    NewEvent,
    StreamHead,
    chain,
    copy_rows,
    new_personal_key,
)

log = logging.getLogger(__name__)


class Prepared(msgspec.Struct, frozen=True):
    """An import decided and encoded, ready for its transaction."""

    events: list[NewEvent]
    rows: CopyRows
    names: list[NameClaim]  # the new categories' names, claimed as they are written


async def prepare(
    pool: asyncpg.Pool,
    command: c.ImportClients,
    names: Mapping[str, int],
    metadata: e.Metadata,
    now: dt.datetime,
    keys: tuple[bytes, MasterKey],
) -> Prepared:
    """Read what deciding needs (the states of the categories the rows use, the
    ids), then decide, chain and encode in a worker thread. `names`: the business's
    categories, name key -> id; `keys`: the hash chain's key, and the master key
    that wraps each new client's key."""
    categories = await _category_states(pool, categories_used(command, names))
    new = new_category_names(command.rows, names)
    ids = await id_sequences.draw(pool, ids_needed_by(command, len(new)))
    return await asyncio.to_thread(
        _decided, command, names, categories, ids, metadata, now, keys
    )


async def _category_states(
    pool: asyncpg.Pool, category_ids: set[int]
) -> dict[int, domain.CategoryState]:
    states = StreamStates()
    await states.load(pool, {e.category_stream(id_) for id_ in category_ids})
    found = {id_: states.get(e.category_stream(id_)) for id_ in category_ids}
    return {
        id_: state
        for id_, state in found.items()
        if isinstance(state, domain.CategoryState)
    }


def _decided(
    command: c.ImportClients,
    names: Mapping[str, int],
    categories: Mapping[int, domain.CategoryState],
    ids: c.DrawnIds,
    metadata: e.Metadata,
    now: dt.datetime,
    keys: tuple[bytes, MasterKey],
) -> Prepared:
    """Pure and slow for 100,000 rows: run in a worker thread. Each new client's
    personal fields are sealed under a new key of its own."""
    streams = decide_import(command, names, categories, ids, now)
    business_id = command.business_id
    key, master = keys
    events = [
        event
        for stream in streams
        for event in chain(
            key,
            business_id,
            stream.stream_id,
            StreamHead(),
            stream.payloads,
            now,
            metadata,
            (
                new_personal_key(master, business_id, stream.stream_id)
                if isinstance(stream.payloads[0], e.ClientCreated)
                else None
            ),
        )
    ]
    claims = [
        NameClaim(business_id, domain.name_key(payload.name), payload.category_id)
        for stream in streams
        for payload in stream.payloads
        if isinstance(payload, e.CategoryCreated)
    ]
    return Prepared(events, copy_rows(events), claims)


async def commit_import(
    pool: asyncpg.Pool,
    prepared: Prepared,
    record: ImportRecord,
    claim: IdempotencyClaim | None,
    response: Result,
) -> e.Envelope:
    """Write the whole import atomically, unless the business imported the same file
    meanwhile (import_store.DuplicateImport); returns its last stored event."""

    def answer(stored: list[e.Envelope]) -> list[Answer]:
        positioned = msgspec.structs.replace(response, position=stored[-1].position)
        return [Answer(record.business_id, claim, positioned)]

    async def insert(conn: asyncpg.Connection, stored: list[e.Envelope]) -> None:
        await import_store.insert(conn, record, stored[-1])

    write = Write(
        events=prepared.rows,
        names=prepared.names,
        answer=answer,
        check=functools.partial(import_store.check_first, record=record),
        record=insert,
    )
    started = time.perf_counter()
    try:
        async with pool.acquire() as conn:
            committed = await commit(conn, pool, write)
    except NameClaimedConcurrently as error:
        raise Conflict(
            "A category of the file was created concurrently; retry"
        ) from error
    except KeyCommittedConcurrently as error:
        raise Conflict(
            "A request with this Idempotency-Key committed concurrently"
        ) from error
    except CommitOutcomeUnknown as unknown:
        log.warning(
            "import %s: commit outcome unknown: %r", record.import_id, unknown.cause
        )
        raise CommitUnconfirmed() from unknown
    log.info(
        "import %s: %d events committed in %.3f s",
        record.import_id,
        len(prepared.events),
        time.perf_counter() - started,
    )
    return committed.stored[-1]
