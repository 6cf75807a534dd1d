"""The benchmarks' figures: nearest-rank percentiles, milliseconds as printed, and a
timed phase's count, failures, latencies and CPU use."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of `values`; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


@dataclass
class Phase:
    """One timed run: how many operations completed, their latencies, the CPU used."""

    count: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    connections: int | None = None  # a baseline's, if fewer than its concurrency

    @property
    def rate(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s else 0.0

    def figures(self) -> str:
        return (
            f"{self.rate:8.1f}/s  p50 {ms(percentile(self.latencies, 0.5)):>6} ms"
            f"  p99 {ms(percentile(self.latencies, 0.99)):>6} ms"
            f"  (n={self.count}, failed={self.failed})"
            + (f" on {self.connections} connections" if self.connections else "")
        )


def lag_text(lags: Sequence[float]) -> str:
    return (
        f"lag p50 {ms(percentile(lags, 0.5))} ms  p99 {ms(percentile(lags, 0.99))} ms"
        f"  (n={len(lags)})"
    )
