"""Hop 2 for a batch of commands: the appender's deciding, one batch at a time.

Brings each stream's state up to its head once (stream_states.py) and draws the ids
the batch needs, in one round trip with the appender's Idempotency-Key lookup
(batch_reads.py), then decides every command in arrival order with the kernel's rules
(shared/decide.py), chains its events (shared/store/new_events.py) and evolves the
cached state, so that the next command on a stream sees it. Nothing is written here
but the sequences the ids come from: the appender commits the events (commit.py).

A batch of postings (no Idempotency-Key) to clients whose states, and categories,
are cached reads nothing: its ids come from the reserve (id_reserve.py) and it is
decided on the cached states (`Reads.verified` is then false). A posting always
writes an event or is refused, so the write's unique stream version proves each
accepted posting was decided at its stream's head (a stream that moved on refuses
the whole write: ConcurrencyConflict, and the appender decides again after a read),
and a refusal is checked against the head before it is answered (`moved()`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, OrderedDict
from collections.abc import Sequence

import asyncpg
import msgspec

from services.command_api import batch_reads, category_names
from services.command_api.category_names import NameClaim
from services.command_api.id_reserve import IdReserve
from services.command_api.stream_states import (
    StreamStates,
    category_streams,
    streams_of,
)
from services.command_api.submissions import Decided, Outcome, Submission
from shared import commands as c
from shared import domain
from shared import events as e
from shared.clock import Clock
from shared.decide import decide_client, decide_create_category, decide_create_client
from shared.errors import LedgerError
from shared.monitors import (
    MonitorState,
    decide_create_monitor,
    decide_delete_monitor,
    evolve_monitor,
)
from shared.personal_data import MasterKey
from shared.store.new_events import (
    NewEvent,
    PersonalKey,
    StreamHead,
    chain,
    new_personal_key,
)

CONTESTED_MAX = 20_000  # streams remembered as written by other processes too


class Reads(msgspec.Struct, kw_only=True, frozen=True):
    """What read() found for a batch: its ids, the stored answers of its keys, and the
    streams it brought up to their head."""

    ids: c.DrawnIds
    stored: batch_reads.Stored
    streams: set[str]
    verified: bool = True  # False: decided on cached states alone, nothing read


class BatchDecider:
    """Decides the appender's batches, with the stream states cached between them."""

    def __init__(self, hmac_key: bytes, master: MasterKey, clock: Clock) -> None:
        self._key = hmac_key
        self._master = master
        self._clock = clock
        self._states = StreamStates()
        self._reserve = IdReserve()
        self._contested: OrderedDict[str, None] = OrderedDict()

    def forget(self, batch: list[Submission], contested: bool = False) -> None:
        """Drop what deciding the batch cached, for a batch whose events were not
        written: the streams it addressed and every state it put. `contested`: its
        streams are written by another process too, so every batch reads them from
        now on (a batch decided on a stale cached state fails its write, and its
        streams are loaded whole again: once per stream, not per posting)."""
        touched = streams_of(submission.command for submission in batch)
        self._states.forget(touched | self._states.take_put())
        if contested:
            self._contested.update(dict.fromkeys(touched))
            while len(self._contested) > CONTESTED_MAX:
                self._contested.popitem(last=False)

    async def read(
        self,
        conn: asyncpg.Connection,
        batch: list[Submission],
        keys: Sequence[tuple[int, str]],
        cached: bool = True,
    ) -> Reads:
        """What deciding the batch reads, in one round trip (batch_reads.py): each
        addressed stream brought up to its head, with the categories the cached
        states name, the ids the batch needs, and the answers stored for `keys`.
        Nothing for a batch of postings to cached clients (unless not `cached`)."""
        commands = [submission.command for submission in batch]
        streams = streams_of(commands) | category_streams(commands, self._states)
        counts = c.ids_needed(Counter(type(command) for command in commands))
        if (
            cached
            and not keys
            and all(isinstance(command, c.ENTRY_COMMANDS) for command in commands)
            and not any(stream in self._contested for stream in streams)
            and self._states.used(streams)
        ):
            ids = self._reserve.take(counts)
            if ids is not None:
                return Reads(ids=ids, stored={}, streams=streams, verified=False)
        to_draw = self._reserve.to_draw(counts)
        drawn, stored = await batch_reads.read(
            conn, self._states, streams, to_draw, keys
        )
        ids = self._reserve.drawn(counts, drawn)
        return Reads(ids=ids, stored=stored, streams=streams)

    async def moved(
        self, conn: asyncpg.Connection, batch: list[Submission]
    ) -> list[Submission]:
        """Of commands refused on cached states alone, those whose stream had moved
        on (brought up to its head now, for them to be decided again)."""
        moved = await self._states.moved(conn, streams_of(s.command for s in batch))
        return [s for s in batch if streams_of([s.command]) <= moved]

    async def decide(
        self, conn: asyncpg.Connection, batch: list[Submission], reads: Reads
    ) -> tuple[list[Decided], list[tuple[Submission, LedgerError]]]:
        """Each command decided in arrival order against its stream's head (against
        its cached state, when `reads` read nothing: the write proves it, and a
        refusal is checked by the appender; a command sees the ones before it in the
        batch), or refused with its LedgerError.
        `reads` (read()) covers the usual batch; what it could not know is read here:
        categories first named by the caught-up events, and what creations need."""
        self._states.take_put()
        commands = [submission.command for submission in batch]
        named = category_streams(commands, self._states) - reads.streams
        await self._states.load(conn, named)
        taken = await category_names.taken(conn, commands)
        defaults = await category_names.defaults(conn, commands)
        await self._states.load(
            conn, {e.category_stream(category_id) for category_id in defaults.values()}
        )
        decided: list[Decided] = []
        refused: list[tuple[Submission, LedgerError]] = []
        # One reading per attempt: it is every event's recorded_at and, through
        # commands.stamped(), the date of postings without one and of reversals.
        now = self._clock.now()
        for submission in batch:
            new_ids = reads.ids.next_for(submission.command)
            try:
                decided.append(self._decide(submission, new_ids, taken, defaults, now))
            except LedgerError as error:
                refused.append((submission, error))
        return decided, refused

    def _decide(
        self,
        submission: Submission,
        ids: c.NewIds,
        taken: set[tuple[int, str]],
        defaults: dict[int, int],
        now: dt.datetime,
    ) -> Decided:
        command = c.stamped(submission.command, now.date())
        if isinstance(command, c.CreateCategory):
            return self._decide_category(submission, command, ids, taken, now)
        if isinstance(command, c.MonitorCommand):
            return self._decide_monitor(submission, command, now)
        state: domain.ClientState | None = None
        personal: PersonalKey | None = None
        if isinstance(command, c.CreateClient):
            category_id = command.category_id or defaults.get(command.business_id, 0)
            payloads = decide_create_client(command, ids, self._category(category_id))
            stream_id = e.client_stream(ids.client_id)
            personal = new_personal_key(self._master, command.business_id, stream_id)
        else:
            stream_id = e.client_stream(command.client_id)
            cached = self._states.get(stream_id)
            state = cached if isinstance(cached, domain.ClientState) else None
            target = getattr(command, "category_id", msgspec.UNSET)
            category = self._category(target) if isinstance(target, int) else None
            payloads = decide_client(command, state, ids, category)
            if state is not None and state.personal_key is not None:
                personal = PersonalKey(state.personal_key)
        head = StreamHead(state.version, state.last_hash) if state else StreamHead()
        new_events = self._chain(submission, stream_id, head, payloads, now, personal)
        for event in new_events:
            state = domain.evolve_client(state, event.stored(0))
        assert state is not None
        if personal is not None and not state.erased:  # an erased key stays gone
            state.personal_key = personal.key
        self._states.put(stream_id, state)
        # The cached state is evolved in place by the next command on this stream in
        # the same batch, and outcomes are rendered only after the whole batch is
        # written: each outcome keeps its own copy, the state right after its command.
        outcome = Outcome(
            events=[],
            client=_snapshot(state),
            category=self._category(state.category_id),
        )
        return Decided(submission=submission, new_events=new_events, outcome=outcome)

    def _decide_category(
        self,
        submission: Submission,
        command: c.CreateCategory,
        ids: c.NewIds,
        taken: set[tuple[int, str]],
        now: dt.datetime,
    ) -> Decided:
        name = NameClaim(
            command.business_id, domain.name_key(command.name), ids.category_id
        )
        payloads = decide_create_category(
            command, ids, (name.business_id, name.name_key) in taken
        )
        taken.add((name.business_id, name.name_key))
        stream_id = e.category_stream(ids.category_id)
        new_events = self._chain(submission, stream_id, StreamHead(), payloads, now)
        category = domain.evolve_category(None, new_events[0].stored(0))
        self._states.put(stream_id, category)
        return Decided(
            submission=submission,
            new_events=new_events,
            outcome=Outcome(events=[], category=category),
            name=name,
        )

    def _decide_monitor(
        self, submission: Submission, command: c.MonitorCommand, now: dt.datetime
    ) -> Decided:
        state: MonitorState | None = None  # a creation's stream is new
        if isinstance(command, c.CreateMonitor):
            wanted = command.definition
            stream_id = e.monitor_stream(wanted.monitor_id)
            client = self._states.get(e.client_stream(wanted.client_id or 0))
            payloads = decide_create_monitor(
                command,
                client if isinstance(client, domain.ClientState) else None,
                self._category(wanted.category_id or 0),
            )
        else:
            stream_id = e.monitor_stream(command.monitor_id)
            cached = self._states.get(stream_id)
            state = cached if isinstance(cached, MonitorState) else None
            payloads = decide_delete_monitor(command, state)
        head = StreamHead(state.version, state.last_hash) if state else StreamHead()
        new_events = self._chain(submission, stream_id, head, payloads, now)
        for event in new_events:
            state = evolve_monitor(state, event.stored(0))
        assert state is not None
        self._states.put(stream_id, state)
        monitor = msgspec.structs.replace(state)  # later evolves leave it be
        return Decided(
            submission=submission,
            new_events=new_events,
            outcome=Outcome(events=[], monitor=monitor),
        )

    def _category(self, category_id: int) -> domain.CategoryState | None:
        found = self._states.get(e.category_stream(category_id))
        return found if isinstance(found, domain.CategoryState) else None

    def _chain(
        self,
        submission: Submission,
        stream_id: str,
        head: StreamHead,
        payloads: list[e.LedgerEvent],
        now: dt.datetime,
        personal: PersonalKey | None = None,
    ) -> list[NewEvent]:
        business_id, metadata = submission.command.business_id, submission.metadata
        return chain(
            self._key, business_id, stream_id, head, payloads, now, metadata, personal
        )


def _snapshot(state: domain.ClientState) -> domain.ClientState:
    """A copy of a client state that later in-place evolves cannot change. The
    posting-by-id maps are shared, not copied: no renderer reads them."""
    return msgspec.structs.replace(
        state,
        balance_by_date=dict(state.balance_by_date),
        deposit_by_date=dict(state.deposit_by_date),
    )
