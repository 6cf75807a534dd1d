"""CPU per process during a benchmark phase, from Linux's /proc: the bench itself, each
service process (by its role), PostgreSQL (the bench database's backends and the
server's own processes), RabbitMQ, and the whole machine, to tell the service's cost
from other work sharing the machine. Empty off Linux."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.bench.figures import Phase

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: str) -> tuple[str, int, str, float] | None:
    """(command name, parent pid, start time in ticks, CPU seconds used) of a
    process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    rest = text[text.rindex(")") + 2 :].split()
    return name, int(rest[1]), rest[19], (int(rest[11]) + int(rest[12])) / _TICKS


def _role(pid: str) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [word.decode() for word in argv if word]
    tail = (
        words[words.index("services.cli.main") + 1 :]
        if "services.cli.main" in words
        else words
    )
    return " ".join(tail)


def _machine_busy_s() -> float:
    """CPU seconds all cores have spent busy (not idle, waiting for I/O or stolen)."""
    ticks = [int(word) for word in Path("/proc/stat").read_text().split()[1:8]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICKS


@dataclass(frozen=True)
class Watch:
    """What to account CPU to: the service's supervisor and the bench's database."""

    supervisor: int
    database: str


def cpu_snapshot(watch: Watch) -> dict[str, tuple[str, float]]:
    """CPU seconds so far of this process, each service process, PostgreSQL (backends
    on the bench database and the server's own processes) and RabbitMQ, each keyed by
    its pid and start time (a process, not a pid that may be reused) with its role;
    and the whole machine's busy seconds under "machine". Empty off Linux."""
    used: dict[str, tuple[str, float]] = {}
    if not Path("/proc/stat").exists():
        return used
    for pid in filter(str.isdigit, os.listdir("/proc")):
        found = _stat(pid)
        if found is None:
            continue
        name, parent, start, seconds = found
        if int(pid) == os.getpid():
            role = "bench"
        elif parent == watch.supervisor:
            role = _role(pid)
        elif name == "postgres":
            command = _role(pid)
            if f" {watch.database} " not in command and "(" in command:
                continue  # a backend of another database: someone else's work
            role = "postgres"
        elif name == "beam.smp":
            role = "rabbitmq"
        else:
            continue
        used[f"{pid}@{start}"] = (role, seconds)
    used["machine"] = ("machine", _machine_busy_s())
    return used


def cpu_used(
    before: dict[str, tuple[str, float]], after: dict[str, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds by role between two snapshots, process by process: one that began
    in between counts from zero, and one that ended in between counts nothing (its
    time is lost with it, rather than subtracted from its role's, which made a role
    negative when a backend counted before had exited)."""
    used: dict[str, float] = {}
    for process, (role, seconds) in after.items():
        earlier = before.get(process, (role, 0.0))[1]
        used[role] = used.get(role, 0.0) + seconds - earlier
    return used


@contextlib.contextmanager
def measured(phase: Phase, watch: Watch) -> Iterator[None]:
    """Fill the phase's elapsed time and CPU use (core-seconds per second by role)."""
    before, started = cpu_snapshot(watch), time.perf_counter()
    try:
        yield
    finally:
        phase.elapsed_s = time.perf_counter() - started
        used = cpu_used(before, cpu_snapshot(watch))
        phase.cpu = {
            role: seconds / phase.elapsed_s
            for role, seconds in used.items()
            if phase.elapsed_s > 0
        }


def others(phase: Phase) -> float:
    """Cores other processes on the machine used during the phase (noise)."""
    shares = dict(phase.cpu)
    machine = shares.pop("machine", math.nan)
    return max(0.0, machine - sum(shares.values()))


def cpu_line(phase: Phase) -> str:
    """`machine 1.9/2 (others 0.3): api 0.5, ...; 6.1 ms CPU per op` (cores), where
    the CPU per operation counts the service, PostgreSQL and RabbitMQ, not the bench:
    unlike the rates, it barely moves when other work shares the machine."""
    shares = dict(phase.cpu)
    machine = shares.pop("machine", math.nan)
    ranked = sorted(shares.items(), key=lambda item: -item[1])
    serving = sum(share for role, share in shares.items() if role != "bench")
    per_op = serving / phase.rate * 1000 if phase.rate else math.nan
    return (
        f"machine {machine:.2f}/{os.cpu_count()} (others {others(phase):.2f}): "
        + ", ".join(f"{role} {share:.2f}" for role, share in ranked if share >= 0.005)
        + f"; {per_op:.2f} ms CPU per op without the bench"
    )


def peer_cpu_line(phase: Phase) -> str:
    """`machine 1.9/2 (others 0.1): bench 1.1, postgres 0.7; 3.4 ms CPU per op` for
    the peer, whose CPU per operation counts its own threads (this process, "bench")
    and PostgreSQL: the library runs inside the bench, so nothing else is its work."""
    shares = dict(phase.cpu)
    machine = shares.pop("machine", math.nan)
    own = shares.get("bench", 0.0) + shares.get("postgres", 0.0)
    per_op = own / phase.rate * 1000 if phase.rate else math.nan
    return (
        f"machine {machine:.2f}/{os.cpu_count()} (others {others(phase):.2f}): "
        f"its threads {shares.get('bench', 0.0):.2f}, "
        f"postgres {shares.get('postgres', 0.0):.2f}; "
        f"{per_op:.2f} ms CPU per op (its threads and PostgreSQL)"
    )
