"""Bounded growth of the delivery log: the webhook worker deletes delivered and
failed deliveries once LEDGER_WEBHOOK_RETENTION_DAYS have passed since they were
delivered or given up (their last attempt); a pending delivery is never deleted,
however old (it is still owed to its endpoint). A deleted delivery can no longer be
retried, and leaves the log of GET .../deliveries.

Every worker process sweeps (services/webhooks/worker.py), when it starts and every
SWEEP_INTERVAL_S after: in batches of at most SWEEP_BATCH_MAX rows, each its own
transaction, and at most SWEEP_BATCHES_MAX batches a sweep (what is left waits for the
next), so a sweep never holds many locks, nor for long. The rows of a batch are
locked FOR UPDATE SKIP LOCKED: two workers sweeping at once take different rows, and
neither waits for a row a sender or an owner's retry is writing.
"""

from __future__ import annotations

import asyncpg

SWEEP_INTERVAL_S = 600.0
SWEEP_BATCH_MAX = 1000
SWEEP_BATCHES_MAX = 100


async def sweep_batch(
    pool: asyncpg.Pool, retention_days: int, batch_max: int = SWEEP_BATCH_MAX
) -> int:
    """Delete at most `batch_max` settled deliveries older than the retention (the
    oldest first: index webhook_deliveries_settled, migration 0020); how many."""
    status: str = await pool.execute(
        "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries"
        " WHERE status IN ('delivered', 'failed')"
        " AND coalesce(delivered_at, last_attempt_at, created_at)"
        " < now() - make_interval(days => $1)"
        " ORDER BY coalesce(delivered_at, last_attempt_at, created_at)"
        " LIMIT $2 FOR UPDATE SKIP LOCKED)",
        retention_days,
        batch_max,
    )
    return int(status.rsplit(" ", 1)[1])


async def sweep(
    pool: asyncpg.Pool,
    retention_days: int,
    batch_max: int = SWEEP_BATCH_MAX,
    batches_max: int = SWEEP_BATCHES_MAX,
) -> int:
    """One sweep: batches until one comes back short or `batches_max` ran; how many
    deliveries were deleted."""
    deleted = 0
    for _ in range(batches_max):
        count = await sweep_batch(pool, retention_days, batch_max)
        deleted += count
        if count < batch_max:
            break
    return deleted
