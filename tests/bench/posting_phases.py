"""`make bench`'s timed phases against the running service, each printed as it ends.

The default phases: at each concurrency, the postings (with the projection lag probed
where asked), then the asyncpg baseline at the same concurrency. Then two phases for
the record (issue 12), at RECORD_CONCURRENCY, which the targets are not measured on:
every posting with a fresh `Idempotency-Key` (a uuid4, as the Python client sends
one), and the default postings with one external subscriber queue bound with `#` to
the topic exchange (subscriber_queue.py), and postings with a description and a
reference to clients with every personal field set, all of it sealed (issue 13).
Every phase prints postings/s, p50, p99,
its CPU use by process and how many commands each group commit carried.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from tests.bench.baseline import run_baseline
from tests.bench.counting_client import Ledger
from tests.bench.cpu_use import Watch, cpu_line
from tests.bench.figures import Phase, lag_text
from tests.bench.posting_workloads import run_postings
from tests.bench.subscriber_queue import subscriber_queue
from tests.support.environment import Environment

CONCURRENCIES = (1, 16, 64)
LAG_PROBED_AT = (16, 64)
RECORD_CONCURRENCY = 64
KEYED = f"c={RECORD_CONCURRENCY} Idempotency-Key"
SUBSCRIBED = f"c={RECORD_CONCURRENCY} subscriber queue"
PERSONAL = f"c={RECORD_CONCURRENCY} personal data"

GROUP_COMMIT = """
SELECT count(*) AS events, count(DISTINCT transaction_id) AS commits
FROM events WHERE position > $1 AND position <= $2
"""


@dataclass
class Results:
    """Every phase of the service's run: the postings by label (`c=16`, or an extra
    phase's name) and the baselines by concurrency."""

    postings: dict[str, Phase] = field(default_factory=dict)
    baselines: dict[int, Phase] = field(default_factory=dict)

    def ratios(self) -> dict[int, float]:
        """postings/s / baseline rows/s at each concurrency."""
        return {
            concurrency: (
                self.postings[f"c={concurrency}"].rate / baseline.rate
                if baseline.rate
                else 0.0
            )
            for concurrency, baseline in self.baselines.items()
        }


@dataclass(frozen=True)
class Bench:
    """What every phase posts through and accounts CPU to."""

    env: Environment
    admin: asyncpg.Pool
    ledger: Ledger
    clients: Sequence[int]
    watch: Watch
    seconds: float
    personal_clients: Sequence[int] = ()  # with every personal field set


async def post_phase(
    bench: Bench, concurrency: int, keyed: bool = False, personal: bool = False
) -> Phase:
    """Postings for `bench.seconds` at `concurrency`, printed with their CPU use, the
    group commit and (where probed) the projection lag."""
    lags: list[float] | None = [] if concurrency in LAG_PROBED_AT else None
    first = await bench.admin.fetchval("SELECT max(position) FROM events")
    posted = await run_postings(
        bench.ledger,
        bench.clients,
        concurrency,
        bench.seconds,
        bench.watch,
        lags,
        keyed,
        personal,
    )
    grouped = await bench.admin.fetchrow(GROUP_COMMIT, first, bench.ledger.position_max)
    print(f"  postings  {posted.figures()}")
    print(f"    cpu (cores): {cpu_line(posted)}")
    print(
        f"    group commit: {grouped['events']} events in "
        f"{grouped['commits']} transactions "
        f"({grouped['events'] / max(1, grouped['commits']):.1f} per commit)"
    )
    if lags is not None:
        print(f"  projection {lag_text(lags)} (one extra probe task)")
    return posted


async def default_phases(bench: Bench, results: Results) -> None:
    """Each concurrency's postings, then its baseline and `ratio`."""
    for concurrency in CONCURRENCIES:
        print(f"concurrency {concurrency}")
        posted = await post_phase(bench, concurrency)
        baseline = await run_baseline(
            bench.env.admin_url, concurrency, bench.seconds, bench.watch
        )
        print(f"  baseline  {baseline.figures()}")
        print(f"    cpu (cores): {cpu_line(baseline)}")
        results.postings[f"c={concurrency}"] = posted
        results.baselines[concurrency] = baseline
        print(f"  ratio {results.ratios()[concurrency]:.3f}")


async def record_phases(bench: Bench, results: Results) -> None:
    """The two phases for the record: keyed postings, then one subscriber queue."""
    print(
        f"concurrency {RECORD_CONCURRENCY}, for the record: every posting with a "
        "fresh Idempotency-Key (uuid4, as the Python client sends it)"
    )
    results.postings[KEYED] = await post_phase(bench, RECORD_CONCURRENCY, keyed=True)
    settings = bench.env.settings
    print(
        f"concurrency {RECORD_CONCURRENCY}, for the record: one external subscriber "
        f"queue bound with # to {settings.exchange}, every message acked"
    )
    async with subscriber_queue(
        settings.amqp_url, settings.exchange, f"{settings.exchange}.bench-subscriber"
    ) as acked:
        results.postings[SUBSCRIBED] = await post_phase(bench, RECORD_CONCURRENCY)
    print(
        f"    subscriber: acked {acked.count} messages; {acked.left} were still in "
        "its queue when it was deleted"
    )
    print(
        f"concurrency {RECORD_CONCURRENCY}, for the record: personal data sealed on "
        f"the path: {len(bench.personal_clients)} clients with every personal field, "
        "each posting with a description and a reference"
    )
    results.postings[PERSONAL] = await post_phase(
        dataclasses.replace(bench, clients=bench.personal_clients),
        RECORD_CONCURRENCY,
        personal=True,
    )
