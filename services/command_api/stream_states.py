"""The write side's view of streams: client and category states, cached per process.

A cached state may be stale when another process appended to its stream. A batch
that reads brings each stream it addresses up to its head in one query; a batch of
postings to cached clients reads nothing (batch_decider.py), and the unique stream
version refuses its write if a stream had moved on (ConcurrencyConflict: the
appender forgets the states and decides again after a read). A refusal decided on a
cached state is checked against the head before it is answered (moved()).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import asyncpg

from shared import commands as c
from shared import domain, personal_data
from shared import events as e
from shared.monitors import MonitorState, evolve_monitor
from shared.store.event_rows import WRAPPED, envelope_from_row

State = domain.ClientState | domain.CategoryState | MonitorState

_CATCH_UP = f"""
SELECT ev.event_id, ev.type, ev.business_id, ev.stream_id, ev.version, ev.position,
       ev.schema_version, ev.recorded_at, ev.metadata::text AS metadata,
       ev.payload::text AS payload, ev.hash, ev.sealed,
       {WRAPPED.format(events="ev")} AS wrapped
FROM unnest($1::text[], $2::integer[]) AS s(stream_id, after_version),
LATERAL (SELECT * FROM events ev
         WHERE ev.stream_id = s.stream_id AND ev.version > s.after_version
         OFFSET 0) AS ev  -- an index lookup per stream in any plan (batch_reads.py)
ORDER BY ev.stream_id, ev.version
"""


class StreamStates:
    """An LRU cache of stream states, brought up to date batch by batch."""

    def __init__(self, size_max: int = 20_000) -> None:
        self._states: OrderedDict[str, State] = OrderedDict()
        self._size_max = size_max
        self._put: set[str] = set()

    def forget(self, stream_ids: Iterable[str]) -> None:
        for stream_id in stream_ids:
            self._states.pop(stream_id, None)

    def get(self, stream_id: str) -> State | None:
        return self._states.get(stream_id)

    def put(self, stream_id: str, state: State) -> None:
        self._states[stream_id] = state
        self._put.add(stream_id)

    def take_put(self) -> set[str]:
        """The streams put since the last call (the appender forgets them when the
        batch that decided them fails)."""
        put, self._put = self._put, set()
        return put

    async def load(self, conn: asyncpg.Connection, stream_ids: set[str]) -> None:
        """Bring the given streams up to their head (missing streams stay absent)."""
        if not stream_ids:
            return
        ordered, after = self.catch_up_from(stream_ids)
        self.caught_up(ordered, await conn.fetch(_CATCH_UP, ordered, after))

    def used(self, stream_ids: set[str]) -> bool:
        """Whether every one of the streams is cached (each then counts as used)."""
        if not all(stream_id in self._states for stream_id in stream_ids):
            return False
        for stream_id in stream_ids:
            self._states.move_to_end(stream_id)
        return True

    async def moved(self, conn: asyncpg.Connection, stream_ids: set[str]) -> set[str]:
        """Bring the streams up to their head; the ones that were behind it."""
        before = {stream_id: self._version(stream_id) for stream_id in stream_ids}
        await self.load(conn, stream_ids)
        return {
            stream_id
            for stream_id, version in before.items()
            if self._version(stream_id) != version
        }

    def catch_up_from(self, stream_ids: set[str]) -> tuple[list[str], list[int]]:
        """The streams, in order, and the version each is cached at (0: none): what
        a catch-up reads after (_CATCH_UP, or services/command_api/batch_reads.py)."""
        ordered = sorted(stream_ids)
        return ordered, [self._version(stream_id) for stream_id in ordered]

    def caught_up(self, ordered: list[str], rows: Iterable[asyncpg.Record]) -> None:
        """Apply a catch-up's events (by stream, then version) to the cached states
        of the `ordered` streams; the least recently used states beyond the bound
        are dropped."""
        for row in rows:
            self._apply(envelope_from_row(row), row["wrapped"])
        for stream_id in ordered:
            if stream_id in self._states:
                self._states.move_to_end(stream_id)
        while len(self._states) > self._size_max:
            self._states.popitem(last=False)

    def _version(self, stream_id: str) -> int:
        state = self._states.get(stream_id)
        return state.version if state is not None else 0

    def _apply(self, event: e.Envelope, wrapped: bytes | None) -> None:
        """Evolve the stream's state by the event; a sealed event's client key (its
        row's `wrapped`) becomes the state's, for the stream's next events."""
        state = self._states.get(event.stream_id)
        if isinstance(event.payload, e.CategoryCreated):
            self._states[event.stream_id] = domain.evolve_category(None, event)
            return
        if isinstance(state, MonitorState) or isinstance(
            event.payload, e.MonitorCreated
        ):
            assert state is None or isinstance(state, MonitorState)
            self._states[event.stream_id] = evolve_monitor(state, event)
            return
        assert state is None or isinstance(state, domain.ClientState)
        state = self._states[event.stream_id] = domain.evolve_client(state, event)
        if wrapped is not None and state.personal_key is None:
            state.personal_key = personal_data.unwrap(
                wrapped, event.business_id, event.stream_id
            )


def streams_of(commands: Iterable[c.LedgerCommand]) -> set[str]:
    """The existing streams the commands address (creations address new ones; a
    monitor's creation reads the client it watches)."""
    addressed: set[str] = set()
    for command in commands:
        if isinstance(command, c.DeleteMonitor):
            addressed.add(e.monitor_stream(command.monitor_id))
        elif isinstance(command, c.CreateMonitor):
            if command.definition.client_id is not None:
                addressed.add(e.client_stream(command.definition.client_id))
        elif not isinstance(command, c.CreateCategory | c.CreateClient):
            addressed.add(e.client_stream(command.client_id))
    return addressed


def category_streams(
    commands: Iterable[c.LedgerCommand], states: StreamStates
) -> set[str]:
    """Every category a command names, and each addressed client's own category."""
    needed: set[str] = set()
    for command in commands:
        if isinstance(command, c.CreateMonitor):
            command_category = command.definition.category_id
            if command_category is not None:
                needed.add(e.category_stream(command_category))
            continue
        target = getattr(command, "category_id", None)
        if isinstance(target, int):
            needed.add(e.category_stream(target))
        if isinstance(command, c.CreateCategory | c.CreateClient | c.MonitorCommand):
            continue
        state = states.get(e.client_stream(command.client_id))
        if isinstance(state, domain.ClientState):
            needed.add(e.category_stream(state.category_id))
    return needed
