"""Worker processes where the API folds events: audit verify and `as_of`.

Folding is CPU-bound pure Python. On the event loop it stalled every other request;
in a thread it still held the GIL, which the loop had to win back at every wake-up:
with four audits and four `as_of` summaries running, /healthz p99 was 954 ms on the
loop, 455 ms in the default thread pool, 318 ms in one dedicated thread, and 11 ms in
worker processes (tests/bench/folds.py). In a process of its own a fold shares only
the CPU, which the kernel divides fairly, and nothing of the API's GIL.

A fold is `function(conn, *args)`, an async function importable by name (it is sent
to the worker by reference): the worker runs it on a connection of its own to
PostgreSQL (services/bootstrap.fold_connection) and sends back its (picklable) answer.
At most `fold_processes` folds run at once; more wait for a worker (each business has
at most `expensive_work_per_business_max` of them in flight,
services/http/fair_use.py). Workers are started with `spawn` (a fork of a process with
threads running is unsafe), on first use, and live until the app stops.

A worker killed mid-life (the OOM killer, an operator) breaks a ProcessPoolExecutor
for good: every later fold would raise BrokenProcessPool, a 500, until a restart. So
the first fold to meet a broken pool replaces it with a fresh one and answers 503 with
Retry-After (FoldWorkerLost); the retry runs on the new workers.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import asyncpg
from aiohttp import web

from services import bootstrap
from services.http.edge import SETTINGS
from shared.config import Settings
from shared.errors import FoldWorkerLost
from shared.key_settings import settings_master_keys
from shared.parent_death import kill_me_with_parent
from shared.personal_data import MasterKey, use_master_keys

T = TypeVar("T")
Fold = Callable[..., Awaitable[T]]


class FoldWorkers:
    """The app's worker pool, replaced by a fresh one when a worker died abruptly."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._settings.fold_processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(), _master_keys(self._settings)),
        )

    def submit(self, function: Callable[..., T], *args: Any) -> Future[T]:
        return self.executor.submit(function, *args)

    def replace(self, broken: ProcessPoolExecutor) -> None:
        """A fresh pool for `broken`, unless a concurrent fold replaced it first."""
        if self.executor is broken:
            self.executor = self._new_executor()
            broken.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        # Folds still running are not waited for: their requests are gone, and the
        # interpreter's exit would otherwise join the workers (the pool keeps them in
        # a private mapping; there is no public way to stop a running task).
        workers = list(self.executor._processes.values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()


FOLD_PROCESSES = web.AppKey("fold_processes", FoldWorkers)


def fold_processes_context(
    settings: Settings,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx entry: the worker pool for the app's lifetime."""

    async def pool(app: web.Application) -> AsyncIterator[None]:
        app[FOLD_PROCESSES] = FoldWorkers(settings)
        yield
        app[FOLD_PROCESSES].shutdown()

    return pool


async def in_fold_process(
    request: web.Request, function: Fold[T], *args: object, dsn: str | None = None
) -> T:
    """`await function(conn, *args)` in a worker, on a connection of its own to `dsn`
    (default: the primary; `as_of` passes a read replica's); 503 (and a fresh pool
    for the retry) if a worker of the pool died abruptly."""
    dsn = dsn or request.app[SETTINGS].database_url
    workers = request.app[FOLD_PROCESSES]
    executor = workers.executor
    try:
        return await asyncio.get_running_loop().run_in_executor(
            executor, _run, dsn, function, args
        )
    except BrokenProcessPool:
        workers.replace(executor)
        raise FoldWorkerLost() from None


def _master_keys(settings: Settings) -> tuple[MasterKey, ...]:
    keys = settings_master_keys(settings)
    return (keys.current, *keys.previous)


def _start_worker(parent_pid: int, master_keys: tuple[MasterKey, ...]) -> None:
    """A worker dies with the API process that started it, even mid-fold: left to
    itself it would outlive a killed parent, waiting on its task queue for ever.
    Linux's PR_SET_PDEATHSIG sends it SIGKILL when the parent ends (elsewhere the
    pool's shutdown is all there is). Ctrl-C reaches the whole process group: a
    worker leaves stopping to the API process, which shuts the pool down. It opens
    sealed personal fields with the API process's master keys (a spawned process
    starts with none)."""
    use_master_keys(*master_keys)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    kill_me_with_parent()
    if os.getppid() != parent_pid:  # the parent ended before prctl took effect
        os._exit(1)


def _run(dsn: str, function: Fold[T], args: tuple[object, ...]) -> T:
    """In the worker: one fold, on a connection opened and closed around it."""
    return asyncio.run(_connected(dsn, function, args))


async def _connected(dsn: str, function: Fold[T], args: tuple[object, ...]) -> T:
    conn: asyncpg.Connection = await bootstrap.fold_connection(dsn)
    try:
        return await function(conn, *args)
    finally:
        await conn.close()
