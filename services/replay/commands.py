"""`ledger replay [--projection NAME] [--business ID] [--json]`: a progress bar (events
done, events/s, time left) on a terminal, or one JSON summary line with `--json`. The
CLI opens its connection (services/bootstrap.admin_connection)."""

from __future__ import annotations

import gc
import resource
import sys
from collections.abc import Sequence

import asyncpg
import msgspec
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from services.replay.rebuild import Figures, ReplayError, count_events, replay


class Summary(Figures, kw_only=True):
    peak_rss_mb: float


# Allocations between two young-generation collections (the default is 700).
GC_THRESHOLD = 50_000


def _collect_less() -> None:
    """Tune the garbage collector for this one-shot process. A replay allocates some
    ten objects per event and frees them batch by batch (reference counting does;
    the few cycles, asyncio's, are still collected, later). At the default threshold
    the collector ran every 700 allocations and its full collections walked every
    object the command had imported: what is imported now is frozen out of its
    reach (it lives until the process ends anyway), and it runs a seventieth as
    often. Together 2.4 of the replay's 8 s of CPU per million events."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD)


async def replay_command(
    conn: asyncpg.Connection,
    names: Sequence[str],
    business_id: int | None,
    as_json: bool,
) -> int:
    _collect_less()
    try:
        total = await count_events(conn, business_id)
        columns = (
            TextColumn("replay"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, disable=as_json, transient=False) as bar:
            task = bar.add_task("events", total=total, rate="")

            def advance(done: int) -> None:
                bar.advance(task, done)
                speed = bar.tasks[task].speed
                bar.update(task, rate=f"{speed:,.0f} events/s" if speed else "")

            outcome = await replay(conn, names, business_id, advance)
    except ReplayError as error:
        print(f"ledger: {error}", file=sys.stderr)
        return 1
    summary = Summary(
        projections=outcome.projections,
        business_id=outcome.business_id,
        events=outcome.events,
        seconds=outcome.seconds,
        events_per_s=outcome.events_per_s,
        position=outcome.position,
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )
    if as_json:
        print(msgspec.json.encode(summary).decode())
    else:
        print(
            f"ledger: rebuilt {', '.join(summary.projections)} from"
            f" {summary.events:,} events in {summary.seconds:.1f} s"
            f" ({summary.events_per_s:,.0f} events/s), up to position"
            f" {summary.position}; peak RSS {summary.peak_rss_mb:.0f} MB"
        )
    return 0
