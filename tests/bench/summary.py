"""`make bench`'s closing figures, printed after every phase has run.

- `ratio` (kept from the first bench): postings/s / the asyncpg baseline's rows/s at
  each concurrency, and the highest concurrency's alone;
- `vs eventsourcing`: our postings/s / the peer's (peer.py) at each concurrency both
  ran;
- the CPU per posting, per process, in ms: one row per phase of ours (each default
  concurrency, then the phases for the record), columns API, PostgreSQL, RabbitMQ,
  relay, projectors (every projector process summed) and total (the service's
  processes, PostgreSQL and RabbitMQ: what `cpu (cores)` counts, never the bench);
- a warning when other processes used the machine during a phase.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from tests.bench.cpu_use import others
from tests.bench.figures import Phase
from tests.bench.posting_phases import Results

NOISY_CORES = 0.2  # other processes' CPU above which the figures are flagged
COLUMNS = (
    "API",
    "PostgreSQL",
    "RabbitMQ",
    "relay",
    "projectors",
    "monitor",
    "webhooks",
    "total",
)


def print_ratios(results: Results) -> None:
    """Every concurrency's ratio to the baseline, then the highest concurrency's."""
    ratios = results.ratios()
    print("ratios: " + ", ".join(f"c={c} {r:.3f}" for c, r in ratios.items()))
    print(f"ratio {ratios[max(ratios)]:.3f}")


def print_versus(results: Results, peer: Mapping[int, Phase]) -> None:
    """`vs eventsourcing` at each concurrency the peer ran."""
    for concurrency, theirs in peer.items():
        ours = results.postings[f"c={concurrency}"].rate
        versus = ours / theirs.rate if theirs.rate else math.nan
        print(
            f"vs eventsourcing c={concurrency}: {versus:.2f}x "
            f"({ours:.1f} postings/s against {theirs.rate:.1f})"
        )


def cpu_columns(phase: Phase) -> dict[str, float]:
    """The phase's CPU per posting in ms, by COLUMNS."""
    if not phase.rate:
        return dict.fromkeys(COLUMNS, math.nan)
    per_posting = {
        role: share / phase.rate * 1000
        for role, share in phase.cpu.items()
        if role not in ("bench", "machine")
    }
    return {
        "API": per_posting.get("api", 0.0),
        "PostgreSQL": per_posting.get("postgres", 0.0),
        "RabbitMQ": per_posting.get("rabbitmq", 0.0),
        "relay": per_posting.get("relay", 0.0),
        "projectors": sum(
            ms for role, ms in per_posting.items() if role.startswith("projector")
        ),
        "monitor": per_posting.get("monitor", 0.0),
        "webhooks": per_posting.get("webhooks", 0.0),
        "total": sum(per_posting.values()),
    }


def print_cpu_table(results: Results) -> None:
    """One row per phase of ours: ms of CPU per posting, by process."""
    print("CPU per posting (ms), by process; total = the service, PostgreSQL, RabbitMQ")
    print("| phase | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for label, phase in results.postings.items():
        cells = cpu_columns(phase)
        print(
            f"| {label} | "
            + " | ".join(f"{cells[column]:.2f}" for column in COLUMNS)
            + " |"
        )


def print_summary(results: Results, peer: Mapping[int, Phase]) -> None:
    """The closing figures, and the noise warning over every phase."""
    print("summary")
    print_ratios(results)
    print_versus(results, peer)
    print_cpu_table(results)
    phases = [*results.postings.values(), *results.baselines.values(), *peer.values()]
    noise = max(others(phase) for phase in phases)
    if noise > NOISY_CORES:
        print(
            f"WARNING: other processes used up to {noise:.2f} cores during a phase;"
            " the machine was not quiet, so these figures understate both sides"
        )
