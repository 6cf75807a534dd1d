"""Hop 1 for spreadsheets: parsing in worker processes that can be bounded and stopped.

openpyxl parses synchronously and a crafted workbook can make it burn minutes of CPU
or gigabytes of memory. So each parse runs in a process of its own, forked from
multiprocessing's fork server (which has the parser imported already), with the
limits of worker_limits.py and a wall-clock bound enforced here. A fresh process per
job means RLIMIT_CPU counts that job alone, and a worker the kernel killed leaves
nothing broken behind: the next job gets a new process.

At most `workers` run at once; one more job is refused at once with `WorkersBusy`
(503 with Retry-After: the service's capacity, not the caller's fault). The event
loop never waits on a worker: a thread per running job does the blocking pipe I/O.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess

from services.command_api.spreadsheets.worker_limits import WorkerLimits, work
from shared.errors import WorkersBusy

PARSER = "services.command_api.spreadsheets.sheet_worker"


class ParsePool:
    """A fixed number of concurrent worker processes, each with CPU, memory and
    wall-clock limits."""

    def __init__(self, workers: int, limits: WorkerLimits, timeout_s: float) -> None:
        assert workers >= 1 and timeout_s > 0
        self._workers = workers
        self._limits = limits
        self._timeout_s = timeout_s
        self._busy = 0
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="parse-pool")
        self._running: set[BaseProcess] = set()
        self._lock = threading.Lock()
        self._context: ForkServerContext = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(preload())

    @property
    def busy(self) -> int:
        """How many workers run now."""
        return self._busy

    async def run(
        self, target: Callable[[bytes], bytes], payload: bytes
    ) -> bytes | None:
        """target(payload) computed in a worker process; None if the worker hit a
        limit (or died). Raises WorkersBusy when every worker is taken."""
        if self._busy >= self._workers:
            raise WorkersBusy()
        self._busy += 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._threads, self._run, target, payload)
        future.add_done_callback(self._release)
        # A cancelled request leaves its worker to finish (within its limits); the
        # slot is freed when the worker is gone, never before.
        return await asyncio.shield(future)

    def _release(self, _: object) -> None:
        self._busy -= 1

    def _run(self, target: Callable[[bytes], bytes], payload: bytes) -> bytes | None:
        """In a pool thread: start a worker, hand it the payload, wait for its answer
        up to the wall-clock bound, and make sure it is gone afterwards."""
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=work, args=(theirs, self._limits, target), daemon=True
        )
        with self._lock:
            process.start()
            self._running.add(process)
        theirs.close()
        try:
            return _exchange(ours, payload, self._timeout_s)
        finally:
            ours.close()
            if process.is_alive():  # stopped at the wall clock, or done and exiting
                process.kill()
            process.join()
            with self._lock:
                self._running.discard(process)

    async def close(self) -> None:
        """Stop every running worker and wait for the threads that watch them."""
        with self._lock:
            for process in self._running:
                process.kill()
        await asyncio.to_thread(self._threads.shutdown, True)


def preload() -> list[str]:
    """What the fork server imports once, so that each worker is forked with it
    loaded: the parser, and the main module (by path, or by name under `python -m`,
    as `ledger run` starts the API), which multiprocessing otherwise imports again in
    every worker before its job (0.4 s for `services.cli.main`)."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    name = getattr(spec, "name", None)
    by_name = [name] if isinstance(name, str) and not name.endswith("__main__") else []
    return ["__main__", *by_name, PARSER]


def _exchange(conn: Connection, payload: bytes, timeout_s: float) -> bytes | None:
    """Send the payload, receive the answer; None when the worker died first (a
    limit: end of file, a broken pipe) or did not answer in time."""
    try:
        conn.send_bytes(payload)
        if not conn.poll(timeout_s):
            return None
        return conn.recv_bytes()
    except (EOFError, OSError):
        return None
