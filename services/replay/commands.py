"""`ledger replay [--projection NAME] [--business ID] [--json]`: a progress bar (events
done, events/s, time left) on a terminal, or one JSON summary line with `--json`. The
CLI opens its connection (services/bootstrap.admin_connection)."""

from __future__ import annotations

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


async def replay_command(
    conn: asyncpg.Connection,
    names: Sequence[str],
    business_id: int | None,
    as_json: bool,
) -> int:
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
