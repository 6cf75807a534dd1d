"""Hop 2 for spreadsheets: decide an import with the rules every command follows.

Each row becomes the very commands a caller would send one by one: CreateCategory for
a category name the business lacks (its first spelling), CreateClient, then
PostTransaction "Opening balance", PostDeposit "Opening deposit" and SetArchived as the
row asks. Each is decided by decide.py against its stream's state, evolved (domain.py)
by the events decided before it. The import adds its own clients.imported record.

Pure and synchronous: no I/O, so the route runs it in a worker thread (100,000 rows
take a while). Ids are drawn beforehand (ids_needed_by); hash chaining and the append
follow (shared/store).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping, Sequence

import msgspec

from shared import commands as c
from shared import events as e
from shared.decide import decide_client, decide_create_category, decide_create_client
from shared.domain import CategoryState, ClientState, evolve_category, evolve_client
from shared.domain import name_key as key_of

OPENING_BALANCE = "Opening balance"
OPENING_DEPOSIT = "Opening deposit"


class StreamEvents(msgspec.Struct, frozen=True):
    """A new stream's decided events, in order."""

    stream_id: str
    payloads: list[e.LedgerEvent]


def new_category_names(
    rows: Sequence[c.ImportRow], names: Mapping[str, int]
) -> dict[str, str]:
    """Categories the rows name that the business lacks: name key -> first spelling."""
    new: dict[str, str] = {}
    for row in rows:
        if row.category_name is not None:
            key = key_of(row.category_name)
            if key not in names and key not in new:
                new[key] = row.category_name.strip()
    return new


def categories_used(command: c.ImportClients, names: Mapping[str, int]) -> set[int]:
    """The business's categories the import puts clients in (whose states it needs)."""
    used = {command.category_id}
    for row in command.rows:
        if row.category_name is not None:
            found = names.get(key_of(row.category_name))
            if found is not None:
                used.add(found)
    return used


def ids_needed_by(command: c.ImportClients, new_categories: int) -> c.IdCounts:
    """The ids the import's commands draw, counted by kind before they exist."""
    rows = command.rows
    return c.ids_needed(
        {
            c.CreateCategory: new_categories,
            c.CreateClient: len(rows),
            c.PostTransaction: sum(row.unpaid_minor != 0 for row in rows),
            c.PostDeposit: sum(row.deposit_minor > 0 for row in rows),
        }
    )


def decide_import(
    command: c.ImportClients,
    names: Mapping[str, int],
    categories: Mapping[int, CategoryState],
    ids: c.DrawnIds,
    now: dt.datetime,
) -> list[StreamEvents]:
    """The import's events, stream by stream, in the order they are appended: its
    record, the new categories, then each row's client. `names` holds every category
    of the business (name key -> id), `categories` the states of those it uses
    (categories_used); `now` is the instant the events are recorded at, whose UTC
    date the opening postings carry."""
    record = e.ClientsImported(
        import_id=command.import_id,
        category_id=command.category_id,
        imported=len(command.rows),
        total_unpaid_minor=sum(row.unpaid_minor for row in command.rows),
        file_sha256=command.file_sha256,
    )
    decided = [StreamEvents(e.import_stream(command.import_id), [record])]
    by_name, states = dict(names), dict(categories)
    for key, name in new_category_names(command.rows, names).items():
        create = c.CreateCategory(business_id=command.business_id, name=name)
        new_ids = ids.next_for(create)
        # Only names the business lacks are here; one created meanwhile is refused
        # by the commit's claim on the name (services/command_api/category_names.py).
        payloads = decide_create_category(create, new_ids, name_taken=False)
        stream_id = e.category_stream(new_ids.category_id)
        recorded = _recorded(command.business_id, stream_id, 1, payloads[0], now)
        states[new_ids.category_id] = evolve_category(None, recorded)
        by_name[key] = new_ids.category_id
        decided.append(StreamEvents(stream_id, payloads))
    for row in command.rows:
        category_id = command.category_id
        if row.category_name is not None:
            category_id = by_name[key_of(row.category_name)]
        decided.append(_client(command, row, states[category_id], ids, now))
    return decided


def _client(
    command: c.ImportClients,
    row: c.ImportRow,
    category: CategoryState,
    ids: c.DrawnIds,
    now: dt.datetime,
) -> StreamEvents:
    """One row's client stream: created, then its opening commands, each decided
    against the state the ones before it left."""
    create = c.CreateClient(
        business_id=command.business_id,
        category_id=category.category_id,
        business_name=row.business_name,
        business_phone=row.business_phone,
        business_email=row.business_email,
        business_address=row.business_address,
    )
    new_ids = ids.next_for(create)
    stream_id = e.client_stream(new_ids.client_id)
    payloads = decide_create_client(create, new_ids, category)
    state = _evolved(None, command.business_id, stream_id, payloads, now)
    for opening in _openings(command.business_id, row, new_ids.client_id, now.date()):
        more = decide_client(opening, state, ids.next_for(opening), None)
        state = _evolved(state, command.business_id, stream_id, more, now)
        payloads.extend(more)
    return StreamEvents(stream_id, payloads)


def _openings(
    business_id: int, row: c.ImportRow, client_id: int, today: dt.date
) -> Iterator[c.ClientCommand]:
    """The commands a caller would send after creating the row's client."""
    if row.unpaid_minor != 0:
        yield c.PostTransaction(
            business_id=business_id,
            client_id=client_id,
            entry_type="debit" if row.unpaid_minor > 0 else "credit",
            amount_minor=abs(row.unpaid_minor),
            date=today,
            description=OPENING_BALANCE,
        )
    if row.deposit_minor > 0:
        yield c.PostDeposit(
            business_id=business_id,
            client_id=client_id,
            entry_type="debit",
            amount_minor=row.deposit_minor,
            date=today,
            description=OPENING_DEPOSIT,
        )
    if row.archived:
        yield c.SetArchived(business_id=business_id, client_id=client_id, archived=True)


def _evolved(
    state: ClientState | None,
    business_id: int,
    stream_id: str,
    payloads: Sequence[e.LedgerEvent],
    now: dt.datetime,
) -> ClientState:
    version = state.version if state is not None else 0
    for offset, payload in enumerate(payloads, start=1):
        recorded = _recorded(business_id, stream_id, version + offset, payload, now)
        state = evolve_client(state, recorded)
    assert state is not None
    return state


_UNSTORED_ID = uuid.UUID(int=0)
_UNSTORED_METADATA = e.Metadata(correlation_id="")


def _recorded(
    business_id: int,
    stream_id: str,
    version: int,
    payload: e.LedgerEvent,
    now: dt.datetime,
) -> e.Envelope:
    """A decided event as evolve reads it. It is not chained or stored yet, so it has
    no id, metadata, position or hash: no rule reads them, and the states evolved
    from these envelopes are dropped once the import is decided."""
    return e.Envelope(
        event_id=_UNSTORED_ID,
        type=e.event_type(payload),
        business_id=business_id,
        stream_id=stream_id,
        version=version,
        position=0,
        schema_version=e.SCHEMA_VERSION,
        recorded_at=now,
        metadata=_UNSTORED_METADATA,
        payload=payload,
        hash="",
    )
