"""Hop 1 for spreadsheets: the worker process's side of parse_pool.py.

A worker is forked (by multiprocessing's fork server) for one job. Before it reads
the job it binds its own life to its parent's and caps its CPU seconds and address
space, so a crafted file can neither outlive the API process nor burn more than its
share: past a limit the kernel stops it (SIGXCPU, SIGKILL) or an allocation fails
(MemoryError), and the API answers 422.
"""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Callable
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from shared.parent_death import kill_me_with_parent

MIB = 1024 * 1024


class WorkerLimits(msgspec.Struct, frozen=True, kw_only=True):
    cpu_s: int
    memory_mib: int


def work(
    conn: Connection, limits: WorkerLimits, target: Callable[[bytes], bytes]
) -> None:
    """The worker's whole life: limits, one payload in, one answer out, exit. If it
    dies first (a limit), the parent reads end-of-file and knows why."""
    die_with_parent()
    apply_limits(limits)
    payload = conn.recv_bytes()
    answer = target(payload)
    del payload
    conn.send_bytes(answer)
    conn.close()


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent, the fork server, dies, even
    while it is busy parsing: an orphaned parse kept a core busy for minutes after
    `make run` was stopped. The fork server exits when the API process does (it
    reads end-of-file on a pipe only the API process may hold open), so the worker
    drops its inherited copy of that pipe's write end first. If the API died before
    this, the worker reads end-of-file instead of its payload and exits. On other
    systems the worker still ends at its CPU and wall-clock limits."""
    _drop_fork_server_pipe()
    if not sys.platform.startswith("linux"):
        return
    if not kill_me_with_parent():
        raise OSError("prctl(PR_SET_PDEATHSIG) failed")


def _drop_fork_server_pipe() -> None:
    """multiprocessing hands every forked child the fork server's "alive" pipe (so
    that the child could start processes of its own, which a worker never does);
    while a worker holds it, the fork server outlives the API process."""
    server: Any = getattr(forkserver, "_forkserver", None)
    alive_fd = getattr(server, "_forkserver_alive_fd", None)
    if server is not None and isinstance(alive_fd, int):
        os.close(alive_fd)
        server._forkserver_alive_fd = None


def apply_limits(limits: WorkerLimits) -> None:
    """RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL a second later. RLIMIT_AS
    bounds the address space, so a huge allocation fails with MemoryError."""
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    memory = limits.memory_mib * MIB
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
