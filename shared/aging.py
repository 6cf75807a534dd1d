"""Aged receivables: how much of what a client owes has been open, and for how long.

The rule (DESIGN.md, Decisions: aged receivables): open items, first in, first out.
Credits settle the oldest debits first; the open part of each debit is aged from its
`date` plus the payment terms to the report's date. A reversal cancels the posting it
reverses instead of counting as a credit (the query leaves both out).

Because credits settle debits in date order, the debits older than any cutoff are a
prefix of that order, and what stays open among them is max(0, their sum - credits).
The buckets therefore follow from a handful of sums per client, which the query API
computes in SQL over the statements read model (services/query_api/aging_report.py).
`from_items` here ages each debit one by one, the literal rule: the tests hold the
query's arithmetic, and the query itself, equal to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import msgspec

# A bucket's upper bound in days past due; past the last one is `days_over_90`.
BUCKET_DAYS = (0, 30, 60, 90)
BUCKETS = ("current", "days_1_30", "days_31_60", "days_61_90", "days_over_90")
TERMS_DAYS_MAX = 3650


class Buckets(msgspec.Struct, frozen=True, kw_only=True):
    """One client's (or a business's) aged receivables, in minor units."""

    current: int = 0
    days_1_30: int = 0
    days_31_60: int = 0
    days_61_90: int = 0
    days_over_90: int = 0
    total: int = 0
    unapplied_credit: int = 0

    def __add__(self, other: Buckets) -> Buckets:
        return Buckets(
            **{
                name: getattr(self, name) + getattr(other, name)
                for name in self.__struct_fields__
            }
        )

    def is_empty(self) -> bool:
        return self.total == 0 and self.unapplied_credit == 0


class Item(msgspec.Struct, frozen=True):
    """A statement line as aging sees it: `reversal_of` names the line a reversal
    cancels."""

    line_id: int
    entry_type: str  # "debit" or "credit"
    amount_minor: int
    date: dt.date
    reversal_of: int | None = None


def counted(items: Iterable[Item], as_of: dt.date) -> list[Item]:
    """The lines dated up to `as_of`, without the reversals in that period and the
    lines they reverse (a reversal is never dated before what it reverses)."""
    kept = [item for item in items if item.date <= as_of]
    cancelled = {item.reversal_of for item in kept if item.reversal_of is not None}
    return [
        item
        for item in kept
        if item.reversal_of is None and item.line_id not in cancelled
    ]


def from_items(items: Iterable[Item], as_of: dt.date, terms_days: int) -> Buckets:
    """The literal rule: each debit, oldest first (then by id), settled by what is
    left of the credits, and its open part put in the bucket its age says."""
    lines = counted(items, as_of)
    credit = sum(i.amount_minor for i in lines if i.entry_type == "credit")
    debits = sorted(
        (i for i in lines if i.entry_type == "debit"), key=lambda i: (i.date, i.line_id)
    )
    amounts = dict.fromkeys(BUCKETS, 0)
    for debit in debits:
        settled = min(debit.amount_minor, credit)
        credit -= settled
        age = as_of.toordinal() - terms_days - debit.date.toordinal()
        bucket = sum(1 for days in BUCKET_DAYS if age > days)
        amounts[BUCKETS[bucket]] += debit.amount_minor - settled
    return Buckets(**amounts, total=sum(amounts.values()), unapplied_credit=credit)
