"""Read-model figures recomputed from the events and compared with what is stored.

Each client is folded with the same rules the command side uses (shared.domain), up to
the version each projection says it applied (projection_tracking), so a projection
that is merely behind is not a difference, while a row changed, deleted or added
behind its back is. Category counts and business summaries follow from the folded
clients; statement lines are counted and summed per client.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import asyncpg
import msgspec

from services.audit.report import Difference, Value
from shared import domain
from shared import events as e

_CLIENT_FIELDS = (
    "business_id",
    "category_id",
    *e.PROFILE_FIELDS,
    "archived",
    "deleted",
    "debit_minor",
    "credit_minor",
    "deposit_minor",
    "version",
)


class Lines(msgspec.Struct):
    """A client's statement lines as the statements projection should hold them."""

    transactions: int = 0
    debit_minor: int = 0
    credit_minor: int = 0
    deposits: int = 0
    deposit_minor: int = 0
    transactions_reversed: int = 0
    deposits_reversed: int = 0


class Folds:
    """Client and category states folded from their events, per projection."""

    def __init__(self, tracked: dict[tuple[str, str], int]) -> None:
        self._tracked = tracked
        self.clients: dict[int, domain.ClientState] = {}
        self.lines: dict[int, Lines] = {}
        self.categories: dict[int, domain.CategoryState] = {}

    def add(self, event: e.Envelope) -> None:
        """Fold one event (in stream order); a broken rule raises AssertionError."""
        payload = event.payload
        if isinstance(payload, e.CategoryCreated):
            if event.version <= self._tracked.get(("balances", event.stream_id), 0):
                self.categories[payload.category_id] = domain.evolve_category(
                    None, event
                )
            return
        client_id = getattr(payload, "client_id", None)
        if client_id is None or not event.stream_id.startswith("client-"):
            return
        if event.version <= self._tracked.get(("balances", event.stream_id), 0):
            self.clients[client_id] = domain.evolve_client(
                self.clients.get(client_id), event
            )
        if event.version <= self._tracked.get(("statements", event.stream_id), 0):
            _line(self.lines.setdefault(client_id, Lines()), payload)


def _line(lines: Lines, payload: e.LedgerEvent) -> None:
    """Each posting and each reversal is a statement line; a reversal also marks its
    original `reversed`."""
    if isinstance(payload, e.TransactionPosted | e.TransactionReversed):
        lines.transactions += 1
        if payload.entry_type == "debit":
            lines.debit_minor += payload.amount_minor
        else:
            lines.credit_minor += payload.amount_minor
        if isinstance(payload, e.TransactionReversed):
            lines.transactions_reversed += 1
    elif isinstance(payload, e.DepositPosted | e.DepositReversed):
        lines.deposits += 1
        lines.deposit_minor += domain.signed(payload.entry_type, payload.amount_minor)
        if isinstance(payload, e.DepositReversed):
            lines.deposits_reversed += 1


def _differ(
    kind: str,
    business_id: int | None,
    stream_id: str | None,
    expected: dict[str, Value],
    found: dict[str, Value],
) -> list[Difference]:
    return [
        Difference(
            kind=kind,
            business_id=business_id,
            stream_id=stream_id,
            field=name,
            expected=expected.get(name),
            found=found.get(name),
        )
        for name in sorted(set(expected) | set(found))
        if expected.get(name) != found.get(name)
    ]


def _where(business_id: int | None) -> tuple[str, list[object]]:
    return (
        ("WHERE business_id = $1", [business_id])
        if business_id is not None
        else ("", [])
    )


async def check_clients(
    conn: asyncpg.Connection, folds: Folds, business_id: int | None
) -> list[Difference]:
    where, args = _where(business_id)
    columns = ", ".join(("client_id", *_CLIENT_FIELDS))
    rows = await conn.fetch(f"SELECT {columns} FROM rm_clients {where}", *args)
    found = {row["client_id"]: _plain(dict(row)) for row in rows}
    differences = []
    for client_id in sorted(set(found) | set(folds.clients)):
        state = folds.clients.get(client_id)
        expected = (
            {name: getattr(state, name) for name in _CLIENT_FIELDS} if state else {}
        )
        stored = found.get(client_id, {})
        stored.pop("client_id", None)
        if not stored or not expected:
            expected, stored = (
                {"row": "present" if expected else "absent"},
                {"row": "present" if stored else "absent"},
            )
        owner = state.business_id if state else found[client_id].get("business_id")
        differences += _differ(
            "client",
            owner if isinstance(owner, int) else None,
            e.client_stream(client_id),
            expected,
            stored,
        )
    return differences


def _plain(row: dict[str, object]) -> dict[str, Value]:
    """Read-model values as JSON-able plain values (numeric sums as int)."""
    plain: dict[str, Value] = {}
    for name, value in row.items():
        plain[name] = value if isinstance(value, str | bool | None) else int(value)  # type: ignore[call-overload]
    return plain


async def check_categories(
    conn: asyncpg.Connection, folds: Folds, business_id: int | None
) -> list[Difference]:
    where, args = _where(business_id)
    rows = await conn.fetch(
        f"SELECT category_id, business_id, name, customer_count FROM rm_categories"
        f" {where}",
        *args,
    )
    counts = Counter(
        state.category_id for state in folds.clients.values() if not state.deleted
    )
    found = {row["category_id"]: row for row in rows}
    differences = []
    for category_id in sorted(set(found) | set(folds.categories)):
        state = folds.categories.get(category_id)
        row = found.get(category_id)
        expected: dict[str, Value] = (
            {"name": state.name, "customer_count": counts[category_id]}
            if state
            else {"row": "absent"}
        )
        stored: dict[str, Value] = (
            {"name": row["name"], "customer_count": row["customer_count"]}
            if row
            else {"row": "absent"}
        )
        if state and not row:
            expected = {"row": "present"}
        elif row and not state:
            stored = {"row": "present"}
        owner = state.business_id if state else row["business_id"] if row else None
        differences += _differ(
            "category", owner, e.category_stream(category_id), expected, stored
        )
    return differences


_SUMMARY = """
SELECT business_id, count(*) AS customers,
       sum(debit_minor - credit_minor) AS total_balance_minor,
       sum(deposit_minor) AS total_deposit_minor
FROM rm_clients WHERE NOT deleted {and_business}
GROUP BY business_id
"""


async def check_summaries(
    conn: asyncpg.Connection, folds: Folds, business_id: int | None
) -> list[Difference]:
    and_business = "AND business_id = $1" if business_id is not None else ""
    args = [business_id] if business_id is not None else []
    rows = await conn.fetch(_SUMMARY.format(and_business=and_business), *args)
    found = {
        row["business_id"]: _plain({k: v for k, v in row.items() if k != "business_id"})
        for row in rows
    }
    expected: dict[int, dict[str, Value]] = {}
    for state in folds.clients.values():
        if state.deleted:
            continue
        figures = expected.setdefault(
            state.business_id,
            {
                "customers": 0,
                "total_balance_minor": 0,
                "total_deposit_minor": 0,
            },
        )
        for name, amount in (
            ("customers", 1),
            ("total_balance_minor", state.balance_minor),
            ("total_deposit_minor", state.deposit_minor),
        ):
            figures[name] = int(figures[name] or 0) + amount
    differences = []
    for owner in sorted(set(found) | set(expected)):
        differences += _differ(
            "summary", owner, None, expected.get(owner, {}), found.get(owner, {})
        )
    return differences


_STATEMENT_LINES = """
SELECT client_id, min(business_id) AS business_id, count(*) AS lines,
       count(*) FILTER (WHERE reversed) AS reversed_lines,
       sum(amount_minor) FILTER (WHERE entry_type = 'debit') AS debit_minor,
       sum(amount_minor) FILTER (WHERE entry_type = 'credit') AS credit_minor
FROM {table} {where}
GROUP BY client_id
"""


async def check_statements(
    conn: asyncpg.Connection, folds: Folds, business_id: int | None
) -> list[Difference]:
    where, args = _where(business_id)
    found: dict[int, dict[str, Value]] = defaultdict(dict)
    for table, prefix in (
        ("rm_transactions", "transaction"),
        ("rm_deposits", "deposit"),
    ):
        query = _STATEMENT_LINES.format(table=table, where=where)
        for row in await conn.fetch(query, *args):
            figures = found[row["client_id"]]
            debit, credit = int(row["debit_minor"] or 0), int(row["credit_minor"] or 0)
            figures[f"{prefix}_lines"] = row["lines"]
            if row["reversed_lines"]:
                figures[f"{prefix}_lines_reversed"] = row["reversed_lines"]
            if prefix == "transaction":
                figures["debit_minor"], figures["credit_minor"] = debit, credit
            else:
                figures["deposit_minor"] = debit - credit
    differences = []
    for client_id in sorted(set(found) | set(folds.lines)):
        lines = folds.lines.get(client_id, Lines())
        expected: dict[str, Value] = {}
        if lines.transactions:
            expected |= {
                "transaction_lines": lines.transactions,
                "debit_minor": lines.debit_minor,
                "credit_minor": lines.credit_minor,
            }
        if lines.transactions_reversed:
            expected["transaction_lines_reversed"] = lines.transactions_reversed
        if lines.deposits:
            expected |= {
                "deposit_lines": lines.deposits,
                "deposit_minor": lines.deposit_minor,
            }
        if lines.deposits_reversed:
            expected["deposit_lines_reversed"] = lines.deposits_reversed
        state = folds.clients.get(client_id)
        differences += _differ(
            "statement",
            state.business_id if state else business_id,
            e.client_stream(client_id),
            expected,
            found.get(client_id, {}),
        )
    return differences
