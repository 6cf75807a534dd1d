"""Read-model figures, as the events say they should be, compared with what is stored.

The expected figures come from the folds (services/audit/folds.py), taken up to the
version each projection says it applied, so a projection that is merely behind is not
a difference, while a row changed, deleted or added behind its back is. Category
counts and business summaries follow from the folded clients; statement lines are
counted and summed per client.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import TypeVar

import asyncpg

from services.audit.folds import Folds, Lines
from services.audit.report import Difference, Value
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


# A read-model row by its id: the business that owns it, and its checked fields.
Row = tuple[int, dict[str, Value]]
RowId = TypeVar("RowId", int, str)


def rows_differ(
    kind: str,
    stream_of: Callable[[RowId], str],
    expected: dict[RowId, Row],
    found: dict[RowId, Row],
) -> list[Difference]:
    """Each row's fields as folded against as stored; a row on one side only is one
    difference, in the field `row` (present or absent)."""
    differences = []
    for row_id in sorted(set(expected) | set(found)):
        owner, wanted = expected.get(row_id) or found[row_id]
        stored = found[row_id][1] if row_id in found else {}
        if row_id not in expected or row_id not in found:
            wanted = {"row": "present" if row_id in expected else "absent"}
            stored = {"row": "present" if row_id in found else "absent"}
        differences += _differ(kind, owner, stream_of(row_id), wanted, stored)
    return differences


def where_business(business_id: int | None) -> tuple[str, list[object]]:
    return (
        ("WHERE business_id = $1", [business_id])
        if business_id is not None
        else ("", [])
    )


async def check_clients(
    conn: asyncpg.Connection, folds: Folds, business_id: int | None
) -> list[Difference]:
    where, args = where_business(business_id)
    columns = ", ".join(("client_id", *_CLIENT_FIELDS))
    rows = await conn.fetch(f"SELECT {columns} FROM rm_clients {where}", *args)
    found = {
        row["client_id"]: (
            row["business_id"],
            _plain({name: row[name] for name in _CLIENT_FIELDS}),
        )
        for row in rows
    }
    expected: dict[int, Row] = {
        client_id: (
            state.business_id,
            {name: getattr(state, name) for name in _CLIENT_FIELDS},
        )
        for client_id, state in folds.clients.items()
    }
    return rows_differ("client", e.client_stream, expected, found)


def _plain(row: dict[str, object]) -> dict[str, Value]:
    """Read-model values as JSON-able plain values (numeric sums as int)."""
    plain: dict[str, Value] = {}
    for name, value in row.items():
        plain[name] = value if isinstance(value, str | bool | None) else int(value)  # type: ignore[call-overload]
    return plain


async def check_categories(
    conn: asyncpg.Connection, folds: Folds, business_id: int | None
) -> list[Difference]:
    where, args = where_business(business_id)
    rows = await conn.fetch(
        f"SELECT category_id, business_id, name, customer_count FROM rm_categories"
        f" {where}",
        *args,
    )
    counts = Counter(
        state.category_id for state in folds.clients.values() if not state.deleted
    )
    found: dict[int, Row] = {
        row["category_id"]: (
            row["business_id"],
            {"name": row["name"], "customer_count": row["customer_count"]},
        )
        for row in rows
    }
    expected: dict[int, Row] = {
        category_id: (
            state.business_id,
            {"name": state.name, "customer_count": counts[category_id]},
        )
        for category_id, state in folds.categories.items()
    }
    return rows_differ("category", e.category_stream, expected, found)


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
       sum(amount_minor) FILTER (WHERE entry_type = 'credit') AS credit_minor{digest}
FROM {table} {where}
GROUP BY client_id
"""
# folds.line_digest in SQL: the first 60 bits (15 hex digits) of the MD5 of the
# line's fields joined by "|", summed per client (as numeric: it cannot overflow).
_DIGEST = """,
       sum(('x' || left(md5(concat_ws('|', business_id, transaction_id, entry_type,
           amount_minor, to_char(date, 'YYYY-MM-DD'), coalesce(reversal_of::text, ''))),
           15))::bit(60)::bigint::numeric) AS digest,
       sum(transaction_id) FILTER (WHERE reversed) AS reversed_ids"""


async def check_statements(
    conn: asyncpg.Connection, folds: Folds, business_id: int | None
) -> list[Difference]:
    where, args = where_business(business_id)
    found: dict[int, dict[str, Value]] = defaultdict(dict)
    for table, prefix in (
        ("rm_transactions", "transaction"),
        ("rm_deposits", "deposit"),
    ):
        digest = _DIGEST if prefix == "transaction" else ""
        query = _STATEMENT_LINES.format(table=table, where=where, digest=digest)
        for row in await conn.fetch(query, *args):
            figures = found[row["client_id"]]
            debit, credit = int(row["debit_minor"] or 0), int(row["credit_minor"] or 0)
            figures[f"{prefix}_lines"] = row["lines"]
            if row["reversed_lines"]:
                figures[f"{prefix}_lines_reversed"] = row["reversed_lines"]
            if prefix == "transaction":
                figures["debit_minor"], figures["credit_minor"] = debit, credit
                figures["transaction_digest"] = int(row["digest"])
                if row["reversed_ids"]:
                    figures["transaction_reversed_ids"] = int(row["reversed_ids"])
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
                "transaction_digest": lines.transaction_digest,
            }
        if lines.transaction_reversed_ids:
            expected["transaction_reversed_ids"] = lines.transaction_reversed_ids
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
