"""Client and category states folded from the events, as each projection should hold
them: the audit's expected side.

Each client is folded with the same rules the command side uses (shared.domain), up to
the version each projection says it applied (projection_tracking); the statement
lines are counted and summed per client.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import msgspec

from shared import domain
from shared import events as e
from shared.monitors import MonitorState, evolve_monitor


class Lines(msgspec.Struct):
    """A client's statement lines as the statements projection should hold them."""

    transactions: int = 0
    debit_minor: int = 0
    credit_minor: int = 0
    deposits: int = 0
    deposit_minor: int = 0
    transactions_reversed: int = 0
    deposits_reversed: int = 0
    # What aging reads besides the counts and sums (services/query_api/
    # aging_report.py): each line's business, id, type, amount, date and reversal
    # link, as the
    # sum of a 60-bit digest per line (line_digest; figures._STATEMENT_LINES computes
    # the same in SQL), so a date or a link changed, or two exchanged, moves it.
    transaction_digest: int = 0
    # The ids of the lines marked `reversed`, summed (the reversals' links say which).
    transaction_reversed_ids: int = 0


class Folds:
    """Client and category states folded from their events, per projection."""

    def __init__(self, tracked: dict[tuple[str, str], int]) -> None:
        self._tracked = tracked
        self.clients: dict[int, domain.ClientState] = {}
        self.lines: dict[int, Lines] = {}
        self.categories: dict[int, domain.CategoryState] = {}
        self.monitors: dict[str, MonitorState] = {}

    def add(self, event: e.Envelope) -> None:
        """Fold one event (in stream order); a broken rule raises AssertionError."""
        payload = event.payload
        if isinstance(payload, e.CategoryCreated):
            if event.version <= self._tracked.get(("balances", event.stream_id), 0):
                self.categories[payload.category_id] = domain.evolve_category(
                    None, event
                )
            return
        if event.stream_id.startswith("monitor-"):
            if event.version <= self._tracked.get(("balances", event.stream_id), 0):
                state = evolve_monitor(self.monitors.get(event.stream_id), event)
                self.monitors[event.stream_id] = state
            return
        client_id = getattr(payload, "client_id", None)
        if client_id is None or not event.stream_id.startswith("client-"):
            return
        if event.version <= self._tracked.get(("balances", event.stream_id), 0):
            self.clients[client_id] = domain.evolve_client(
                self.clients.get(client_id), event
            )
        if event.version <= self._tracked.get(("statements", event.stream_id), 0):
            lines = self.lines.setdefault(client_id, Lines())
            _line(lines, event.business_id, payload)


def line_digest(
    business_id: int,
    line_id: int,
    entry_type: str,
    amount_minor: int,
    date: dt.date,
    reversal_of: int | None,
) -> int:
    """A statement line's digest: the first 60 bits of the MD5 of its fields joined
    by "|" (an integrity check against changes behind the projection's back, not a
    secret; PostgreSQL computes the same, figures._STATEMENT_LINES)."""
    text = f"{business_id}|{line_id}|{entry_type}|{amount_minor}|{date.isoformat()}|"
    text += "" if reversal_of is None else str(reversal_of)
    return int(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:15], 16)


def _line(lines: Lines, business_id: int, payload: e.LedgerEvent) -> None:
    """Each posting and each reversal is a statement line; a reversal also marks its
    original `reversed`."""
    if isinstance(payload, e.TransactionPosted | e.TransactionReversed):
        lines.transactions += 1
        if payload.entry_type == "debit":
            lines.debit_minor += payload.amount_minor
        else:
            lines.credit_minor += payload.amount_minor
        reversal_of = getattr(payload, "reversal_of", None)
        lines.transaction_digest += line_digest(
            business_id,
            payload.transaction_id,
            payload.entry_type,
            payload.amount_minor,
            payload.date,
            reversal_of,
        )
        if reversal_of is not None:
            lines.transactions_reversed += 1
            lines.transaction_reversed_ids += reversal_of
    elif isinstance(payload, e.DepositPosted | e.DepositReversed):
        lines.deposits += 1
        lines.deposit_minor += domain.signed(payload.entry_type, payload.amount_minor)
        if isinstance(payload, e.DepositReversed):
            lines.deposits_reversed += 1
