"""The aged receivables report's query (services/query_api/aging.py serves it).

Computed at query time, in one statement over the statements read model (every
transaction line with its date and reversal links) joined to the balances read model
(which clients are live, their category and name): a report as of any date, with any
payment terms, needs no read model of its own, and `ledger replay` and `audit verify`
cover both tables it reads. The statement gives per client the sums shared/aging.py
turns into buckets; see there for why sums are enough.

A reversal is left out with the line it reverses once it is dated on or before the
report's date (it is never dated before that line); dated later, the line it
reverses still counts. Each client's `total` is therefore max(0, the closing balance
of its statement up to `as_of`), exactly.
"""

from __future__ import annotations

import datetime as dt

import asyncpg

from shared import aging

# Per client: its debits and credits up to `as_of` (reversals and what they reverse
# left out: a reversal is never dated before what it reverses; only lines marked
# `reversed` are looked up among the reversals' links, and the audit checks both the
# marks and the links), and its debits more
# than 0, 30, 60 and 90 days past due (`date < as_of - terms - days`). Credits settle
# the oldest debits first, so what stays open of the debits past a cutoff is
# max(0, their sum - credits) (shared/aging.py), and each bucket is the difference
# between two cutoffs. Sums before the join: the lines are added up in one pass,
# client by client, and only each client's seven figures meet rm_clients.
_PAST_DUE = "".join(
    f",\n        coalesce(sum(t.amount_minor) FILTER (WHERE t.entry_type = 'debit'"
    f" AND t.date < $2::date - ($3::integer + {days})), 0) AS past_{days}"
    for days in aging.BUCKET_DAYS
)
_OPEN = "".join(
    f", greatest(past_{days} - credit, 0) AS open_{days}" for days in aging.BUCKET_DAYS
)
_AGING = f"""
WITH sums AS (
    SELECT t.client_id,
        coalesce(sum(t.amount_minor) FILTER (WHERE t.entry_type = 'debit'), 0) AS debit,
        coalesce(sum(t.amount_minor) FILTER (WHERE t.entry_type = 'credit'), 0)
            AS credit{_PAST_DUE}
    FROM rm_transactions t
    WHERE t.business_id = $1 AND t.date <= $2 AND t.reversal_of IS NULL
      AND NOT (t.reversed AND t.transaction_id IN (
          SELECT r.reversal_of FROM rm_transactions r
          WHERE r.business_id = $1 AND r.reversal_of IS NOT NULL AND r.date <= $2))
      {{category}}
    GROUP BY t.client_id
), open AS (
    SELECT client_id, greatest(debit - credit, 0) AS total,
           greatest(credit - debit, 0) AS unapplied_credit{_OPEN}
    FROM sums
)
SELECT c.client_id, c.business_name,
       (o.total - o.open_0)::bigint AS current,
       (o.open_0 - o.open_30)::bigint AS days_1_30,
       (o.open_30 - o.open_60)::bigint AS days_31_60,
       (o.open_60 - o.open_90)::bigint AS days_61_90,
       o.open_90::bigint AS days_over_90,
       o.total::bigint AS total,
       o.unapplied_credit::bigint AS unapplied_credit
FROM open o JOIN rm_clients c ON c.client_id = o.client_id
WHERE c.business_id = $1 AND NOT c.deleted
  AND ($4::bigint IS NULL OR c.category_id = $4)
  AND (o.total > 0 OR o.unapplied_credit > 0)
ORDER BY c.client_id
"""
# A category's report adds up its clients' lines only (each read by index), not the
# whole business's: a statement of its own, so each plan fits.
AGING = _AGING.format(category="")
AGING_OF_CATEGORY = _AGING.format(
    category="""AND t.client_id IN (SELECT client_id FROM rm_clients
                          WHERE business_id = $1 AND category_id = $4)"""
)
# The report's own session settings, for its transaction only. No hashing of the
# sums and no scan of the table: the lines come in client order from
# rm_transactions_by_business, which holds every column the report reads
# (projections/statements/0004_aging.sql), and are added up client by client.
# PostgreSQL's estimates preferred a scan of the table, sorted or hashed per client:
# 1.25 to 1.8 s for a million lines against 0.8.
# Memory for a sort where the index cannot serve (LEDGER_REPORT_WORK_MEM_MIB). No
# JIT, whose compiling cost a third of a second on every report of a big business
# (the plan's estimated cost always triggers it). No parallel workers, whose partial
# sums per client, merged again, were slower than one pass on this machine's two
# cores.
SETTINGS = """
SELECT set_config('work_mem', $1, true), set_config('jit', 'off', true),
       set_config('max_parallel_workers_per_gather', '0', true),
       set_config('enable_hashagg', 'off', true),
       set_config('enable_seqscan', 'off', true)
"""


class Report:
    """The report's rows: each client's buckets (minor units) and the totals."""

    def __init__(self, as_of: dt.date, terms_days: int) -> None:
        self.as_of, self.terms_days = as_of, terms_days
        self.rows: list[asyncpg.Record] = []
        self.totals = aging.Buckets()


async def read_report(
    pool: asyncpg.Pool,
    business_id: int,
    category_id: int | None,
    report: Report,
    work_mem_mib: int,
) -> Report:
    """Fill `report` with the business's clients (of one category, or all) that owe
    something or are in credit, by id, and their totals."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        await conn.execute(SETTINGS, f"{work_mem_mib}MB")
        statement = AGING if category_id is None else AGING_OF_CATEGORY
        report.rows = await conn.fetch(
            statement, business_id, report.as_of, report.terms_days, category_id
        )
    names = aging.Buckets.__struct_fields__
    sums = [sum(row[i] for row in report.rows) for i in range(2, 9)]
    report.totals = aging.Buckets(**dict(zip(names, sums, strict=True)))
    return report
