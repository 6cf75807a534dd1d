"""Aged receivables (shared/aging.py): first in, first out, buckets by days past due,
reversals cancelled, and the sums the query uses equal to the literal rule."""

from __future__ import annotations

import datetime as dt
import random

from shared.aging import BUCKET_DAYS, BUCKETS, Buckets, Item, counted, from_items

AS_OF = dt.date(2026, 6, 30)


def _day(days_before: int) -> dt.date:
    return AS_OF - dt.timedelta(days=days_before)


def test_credits_settle_the_oldest_debits_first() -> None:
    items = [
        Item(1, "debit", 10_000, _day(100)),
        Item(2, "debit", 5_000, _day(45)),
        Item(3, "debit", 2_500, _day(10)),
        Item(4, "credit", 12_000, _day(5)),
    ]

    assert from_items(items, AS_OF, 0) == Buckets(
        days_1_30=2_500, days_31_60=3_000, total=5_500
    )


def test_each_bucket_edge_is_its_last_day() -> None:
    items = [
        Item(1, "debit", 1, _day(0)),
        Item(2, "debit", 10, _day(1)),
        Item(3, "debit", 100, _day(30)),
        Item(4, "debit", 1_000, _day(31)),
        Item(5, "debit", 10_000, _day(60)),
        Item(6, "debit", 100_000, _day(61)),
        Item(7, "debit", 1_000_000, _day(90)),
        Item(8, "debit", 10_000_000, _day(91)),
    ]

    assert from_items(items, AS_OF, 0) == Buckets(
        current=1,
        days_1_30=110,
        days_31_60=11_000,
        days_61_90=1_100_000,
        days_over_90=10_000_000,
        total=11_111_111,
    )


def test_terms_move_every_debit_s_due_date() -> None:
    items = [Item(1, "debit", 700, _day(30)), Item(2, "debit", 300, _day(31))]

    assert from_items(items, AS_OF, 30) == Buckets(
        current=700, days_1_30=300, total=1_000
    )


def test_a_client_in_credit_shows_unapplied_credit_and_no_bucket() -> None:
    items = [Item(1, "debit", 4_000, _day(200)), Item(2, "credit", 6_500, _day(1))]

    assert from_items(items, AS_OF, 0) == Buckets(unapplied_credit=2_500)


def test_a_reversal_cancels_its_posting_instead_of_settling_the_oldest() -> None:
    items = [
        Item(1, "debit", 9_000, _day(120)),
        Item(2, "debit", 4_000, _day(3)),
        Item(3, "credit", 4_000, _day(2), reversal_of=2),
    ]

    # As an ordinary credit it would have settled the 120-day-old debit instead.
    assert from_items(items, AS_OF, 0) == Buckets(days_over_90=9_000, total=9_000)


def test_a_reversal_dated_after_the_report_leaves_its_posting_open() -> None:
    items = [
        Item(1, "debit", 4_000, _day(3)),
        Item(2, "credit", 4_000, _day(-1), reversal_of=1),
    ]

    assert from_items(items, AS_OF, 0) == Buckets(days_1_30=4_000, total=4_000)
    assert counted(items, AS_OF + dt.timedelta(days=1)) == []


def test_postings_dated_after_the_report_are_left_out() -> None:
    items = [Item(1, "debit", 500, _day(0)), Item(2, "credit", 500, _day(-1))]

    assert from_items(items, AS_OF, 0) == Buckets(current=500, total=500)


def test_the_query_s_arithmetic_gives_the_literal_rule_s_buckets() -> None:
    generator = random.Random(20261206)
    for _ in range(2_000):
        items = _random_history(generator)
        terms_days = generator.choice((0, 0, 7, 30, 45))
        assert _by_sums(items, terms_days) == from_items(items, AS_OF, terms_days)


def _random_history(generator: random.Random) -> list[Item]:
    items: list[Item] = []
    for line_id in range(1, generator.randint(0, 12) + 1):
        date = _day(generator.randint(-1, 200))
        if items and generator.random() < 0.15:
            original = generator.choice(items)
            entry_type = "credit" if original.entry_type == "debit" else "debit"
            later = max(date, original.date)
            items.append(
                Item(
                    line_id, entry_type, original.amount_minor, later, original.line_id
                )
            )
            continue
        entry_type = generator.choice(("debit", "debit", "credit"))
        items.append(Item(line_id, entry_type, generator.randint(1, 50_000), date))
    return items


def _by_sums(items: list[Item], terms_days: int) -> Buckets:
    """The query's arithmetic (services/query_api/aging_report.AGING): sums over the
    counted lines, what stays open past each cutoff, and the differences."""
    lines = counted(items, AS_OF)
    debits = [i for i in lines if i.entry_type == "debit"]
    debit = sum(i.amount_minor for i in debits)
    credit = sum(i.amount_minor for i in lines if i.entry_type == "credit")
    cutoffs = [AS_OF.toordinal() - terms_days - days for days in BUCKET_DAYS]
    past_due = [
        sum(i.amount_minor for i in debits if i.date.toordinal() < cutoff)
        for cutoff in cutoffs
    ]
    total = max(0, debit - credit)
    edges = [total, *(max(0, past - credit) for past in past_due), 0]
    amounts = [edges[i] - edges[i + 1] for i in range(len(BUCKETS))]
    return Buckets(
        **dict(zip(BUCKETS, amounts, strict=True)),
        total=total,
        unapplied_credit=max(0, credit - debit),
    )
