"""`?as_of=`: a client or the summary as they stood at a moment of recording.

These answers come from the event store, not the read models: the events recorded at
or before the moment (`recorded_at <= as_of`) are folded with the command side's own
rules (shared.domain), so a posting recorded later is left out even if its transaction
date is earlier. That is the difference from a statement's `from`/`to`, which select
lines by their transaction `date`, whenever they were recorded: a posting back-dated
today to last month shows in last month's statement, but not `as_of` last month.

`as_of` is RFC 3339 with an offset (`2026-11-25T10:00:00+01:00`, `...Z`), or a date,
meaning the end of that day in UTC. The cost grows with the events folded (one
client's stream, or every client stream of the business for the summary), so the
routes run these functions in a fold worker process (services/http/fold_processes.py),
on
the worker's own connection: the API's event loop never folds.
"""

from __future__ import annotations

import datetime as dt
import re

import asyncpg
import msgspec

from shared import domain
from shared import events as e
from shared.errors import ValidationFailed
from shared.store.event_rows import SELECT_EVENTS, envelope_from_row

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
PREFETCH = 2_000
_MESSAGE = "The as_of must be an RFC 3339 timestamp with an offset, or a date."


def parse_as_of(text: str) -> dt.datetime | None:
    """The moment `as_of` names (None when absent or empty); 422 when malformed."""
    text = text.strip()
    if text == "":
        return None
    try:
        if _DATE.fullmatch(text):
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)
        if _TIMESTAMP.fullmatch(text):
            # In UTC here, where it can still be refused: a moment whose UTC instant
            # leaves years 1 to 9999 (`9999-12-31T23:59:59-01:00`) cannot be passed
            # to the store, which would fail the query (a 500).
            moment = dt.datetime.fromisoformat(text.replace("z", "Z"))
            return moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        pass
    raise ValidationFailed({"as_of": [_MESSAGE]})


_EVENTS = (
    SELECT_EVENTS
    + "WHERE business_id = $1 AND recorded_at <= $2 AND {streams}"
    + " ORDER BY stream_id, version"
)


class Folded:
    """Clients (and their categories' names) folded up to a moment."""

    def __init__(self) -> None:
        self.clients: dict[int, domain.ClientState] = {}
        self.category_names: dict[int, str] = {}
        self.position = 0  # the last position folded: the answer's X-Ledger-Position

    def add(self, row: asyncpg.Record) -> None:
        event = envelope_from_row(row)
        self.position = max(self.position, event.position)
        payload = event.payload
        if isinstance(payload, e.CategoryCreated):
            self.category_names[payload.category_id] = payload.name
        elif event.stream_id.startswith("client-"):
            client_id = int(event.stream_id.removeprefix("client-"))
            self.clients[client_id] = domain.evolve_client(
                self.clients.get(client_id), event
            )


async def client_at(
    conn: asyncpg.Connection, business_id: int, client_id: int, moment: dt.datetime
) -> tuple[domain.ClientState | None, str, int]:
    """The client's state at `moment` (None if it did not exist or was deleted),
    its category's name, and the last position folded."""
    folded = Folded()
    query = _EVENTS.format(streams="stream_id = $3")
    for row in await conn.fetch(query, business_id, moment, e.client_stream(client_id)):
        folded.add(row)
    state = folded.clients.get(client_id)
    if state is None or state.deleted:
        return None, "", folded.position
    for row in await conn.fetch(
        query, business_id, moment, e.category_stream(state.category_id)
    ):
        folded.add(row)
    return state, folded.category_names.get(state.category_id, ""), folded.position


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """The summary's figures, as the summary query computes them from rm_clients."""

    total_deposits: int
    customer_count: int
    archived_customers: int
    unarchived_customers: int
    total_balance: int
    position: int


async def summary_at(
    conn: asyncpg.Connection,
    business_id: int,
    category_id: int | None,
    moment: dt.datetime,
) -> Summary:
    """The business's summary at `moment`: every client stream folded up to it."""
    folded = Folded()
    query = _EVENTS.format(streams="stream_id LIKE 'client-%'")
    async with conn.transaction(readonly=True):
        async for row in conn.cursor(query, business_id, moment, prefetch=PREFETCH):
            folded.add(row)
    live = [
        state
        for state in folded.clients.values()
        if not state.deleted
        and (category_id is None or state.category_id == category_id)
    ]
    archived = sum(1 for state in live if state.archived)
    return Summary(
        total_deposits=sum(state.deposit_minor for state in live),
        customer_count=len(live),
        archived_customers=archived,
        unarchived_customers=len(live) - archived,
        total_balance=sum(state.balance_minor for state in live),
        position=folded.position,
    )
