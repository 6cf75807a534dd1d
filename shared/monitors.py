"""Balance monitors: their write-side state, the rules that decide their commands, and
the edge rule the monitor process applies to the events in order (services/monitor/).

A monitor draws a line (`figure condition threshold`) for each client in its scope
and fires when a client's figure crosses it: the figure before an event is on the
quiet side and after it on the firing side. It re-arms by crossing back, and never
fires while a figure stays past the line. It sees only events after its own
monitor.created, so at creation every client keeps its side without firing. Joining
the scope (a category change) is not a crossing: only a posting moves a figure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import msgspec

from shared import commands as c
from shared import events as e
from shared.domain import CategoryState, ClientState, signed
from shared.errors import NotFound, invalid


class MonitorState(msgspec.Struct, kw_only=True):
    """A monitor's stream as the appender knows it."""

    business_id: int
    version: int
    last_hash: str
    definition: e.MonitorCreated
    created_at: dt.datetime
    deleted: bool = False


def evolve_monitor(state: MonitorState | None, event: e.Envelope) -> MonitorState:
    payload = event.payload
    if isinstance(payload, e.MonitorCreated):
        assert state is None, "a monitor is created once"
        return MonitorState(
            business_id=event.business_id,
            version=event.version,
            last_hash=event.hash,
            definition=payload,
            created_at=event.recorded_at,
        )
    assert state is not None, "a monitor's stream starts with monitor.created"
    state.version, state.last_hash = event.version, event.hash
    if isinstance(payload, e.MonitorDeleted):
        state.deleted = True
    return state


def decide_create_monitor(
    command: c.CreateMonitor,
    client: ClientState | None,
    category: CategoryState | None,
) -> list[e.LedgerEvent]:
    """A monitor of one live client of the business, of one of its categories, or of
    all its clients."""
    monitor = command.definition
    if monitor.scope == "client" and (
        client is None or client.deleted or client.business_id != command.business_id
    ):
        raise invalid("client_id", "The selected client id is invalid.")
    if monitor.scope == "category" and (
        category is None or category.business_id != command.business_id
    ):
        raise invalid("category_id", "The selected category id is invalid.")
    return [monitor]


def decide_delete_monitor(
    command: c.DeleteMonitor, state: MonitorState | None
) -> list[e.LedgerEvent]:
    if state is None or state.deleted or state.business_id != command.business_id:
        raise NotFound(f"Monitor {command.monitor_id} not found")
    return [e.MonitorDeleted(monitor_id=command.monitor_id)]


class Figures(msgspec.Struct, kw_only=True):
    """One client's figures as the monitor process follows them."""

    business_id: int
    category_id: int
    balance_minor: int = 0
    deposit_minor: int = 0
    deleted: bool = False


def beyond(condition: e.MonitorCondition, threshold_minor: int, value: int) -> bool:
    """Whether `value` is on the firing side of the line."""
    return value >= threshold_minor if condition == ">=" else value <= threshold_minor


def watches(monitor: e.MonitorCreated, client_id: int, figures: Figures) -> bool:
    if monitor.scope == "client":
        return monitor.client_id == client_id
    if monitor.scope == "category":
        return monitor.category_id == figures.category_id
    return True


def value_of(figures: Figures, figure: e.MonitorFigure) -> int:
    return figures.balance_minor if figure == "balance" else figures.deposit_minor


_POSTINGS = (
    e.TransactionPosted,
    e.TransactionReversed,
    e.DepositPosted,
    e.DepositReversed,
)
_DEPOSITS = (e.DepositPosted, e.DepositReversed)


def evolve_figures(figures: dict[int, Figures], event: e.Envelope) -> int | None:
    """Apply a client event to the figures; the client whose figures it moved (a
    posting or a reversal), else None. A reversal is a posting of the opposite entry
    type, counted like one (as the balances projection does)."""
    payload = event.payload
    if isinstance(payload, e.ClientCreated):
        figures[payload.client_id] = Figures(
            business_id=event.business_id, category_id=payload.category_id
        )
    elif isinstance(payload, e.ClientUpdated):
        if isinstance(payload.category_id, int) and payload.client_id in figures:
            figures[payload.client_id].category_id = payload.category_id
    elif isinstance(payload, e.ClientDeleted) and payload.client_id in figures:
        figures[payload.client_id].deleted = True
    elif isinstance(payload, _POSTINGS) and payload.client_id in figures:
        client = figures[payload.client_id]
        amount = signed(payload.entry_type, payload.amount_minor)
        if isinstance(payload, _DEPOSITS):
            client.deposit_minor += amount
        else:
            client.balance_minor += amount
        return payload.client_id
    return None


def crossings(
    monitors: Iterable[e.MonitorCreated],
    client_id: int,
    before: Figures,
    after: Figures,
    position: int,
) -> list[e.MonitorTriggered]:
    """The monitors whose line the client's figure crossed, from `before` to
    `after`, at the event at `position`."""
    fired: list[e.MonitorTriggered] = []
    for monitor in monitors:
        if not watches(monitor, client_id, after):
            continue
        was = value_of(before, monitor.figure)
        now = value_of(after, monitor.figure)
        if beyond(monitor.condition, monitor.threshold_minor, was) or not beyond(
            monitor.condition, monitor.threshold_minor, now
        ):
            continue
        fired.append(
            e.MonitorTriggered(
                monitor_id=monitor.monitor_id,
                client_id=client_id,
                figure=monitor.figure,
                condition=monitor.condition,
                threshold_minor=monitor.threshold_minor,
                value_minor=now,
                position=position,
            )
        )
    return fired


# A monitor's creation as the process saw it: business, definition, position.
Created = tuple[int, e.MonitorCreated, int]


class Watch:
    """What the monitor process knows at its cursor: the live monitors by business,
    the figures of every client of a followed business (one that has had a monitor),
    and what changed since the last take_changes() (the process writes it with its
    cursor)."""

    def __init__(self) -> None:
        self.monitors: dict[int, dict[str, e.MonitorCreated]] = {}
        self.figures: dict[int, Figures] = {}
        self.followed: set[int] = set()
        self.changed_clients: set[int] = set()
        self.created: list[Created] = []
        self.deleted: list[tuple[str, int]] = []

    def unfollowed(self, event: e.Envelope) -> bool:
        """A monitor's creation for a business not followed yet: its figures up to
        here must be folded (quietly) before the events after it are observed."""
        return (
            isinstance(event.payload, e.MonitorCreated)
            and event.business_id not in self.followed
        )

    def fold(self, event: e.Envelope) -> None:
        """A followed business's earlier event: figures only, nothing fires."""
        if evolve_figures(self.figures, event) is not None or _of_client(event):
            self.changed_clients.add(getattr(event.payload, "client_id", 0))

    def observe(self, event: e.Envelope) -> list[e.MonitorTriggered]:
        """Apply one event in store order; the crossings it makes."""
        payload = event.payload
        if isinstance(payload, e.MonitorCreated):
            self.followed.add(event.business_id)
            self.monitors.setdefault(event.business_id, {})[payload.monitor_id] = (
                payload
            )
            self.created.append((event.business_id, payload, event.position))
            return []
        if isinstance(payload, e.MonitorDeleted):
            self.monitors.get(event.business_id, {}).pop(payload.monitor_id, None)
            self.deleted.append((payload.monitor_id, event.position))
            return []
        if event.business_id not in self.followed or not _of_client(event):
            return []
        client_id: int = getattr(payload, "client_id", 0)
        known = self.figures.get(client_id)
        before = msgspec.structs.replace(known) if known is not None else None
        moved = evolve_figures(self.figures, event)
        self.changed_clients.add(client_id)
        after = self.figures.get(client_id)
        if moved is None or before is None or after is None or after.deleted:
            return []
        monitors = self.monitors.get(event.business_id, {}).values()
        return crossings(monitors, client_id, before, after, event.position)

    def take_changes(self) -> tuple[set[int], list[Created], list[tuple[str, int]]]:
        changes = self.changed_clients, self.created, self.deleted
        self.changed_clients, self.created, self.deleted = set(), [], []
        return changes


def _of_client(event: e.Envelope) -> bool:
    return event.stream_id.startswith("client-")
