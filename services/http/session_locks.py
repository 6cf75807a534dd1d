"""Claims held for the whole service, that end with their holder: PostgreSQL
session-level advisory locks on one dedicated connection of each API process.

Two things are claimed this way: an Idempotency-Key while its request runs
(services/command_api/idempotency.py: the same key at another process meanwhile is a
409) and a business's slot for expensive work (services/http/fair_use.py).

Why advisory locks rather than a claims table with a lease (holder, expires_at,
renewed while the request runs):
- a claim ends the moment its holder does: PostgreSQL releases a session's locks
  when its connection closes, and a process that dies (SIGKILL, the OOM killer)
  closes its sockets at once, so the key is free again without a lease to wait out
  and no renewal task to keep alive while a long import runs. A host that vanishes
  without closing anything is found by TCP keepalives (services/bootstrap.py:
  about 25 s);
- nothing is written: a lock is in PostgreSQL's shared memory, no row, no WAL, no
  vacuum, which keeps a keyed POST cheap (README "Several API processes" has the
  figures);
- the claims of one process share one connection and go in batches: every lock and
  unlock waiting when a statement ends goes in the next one (one round trip for many
  requests at concurrency 64, as the appender's group commit).

A session lock is re-entrant within its session, so each process also keeps the
claims it holds (`held`) and never asks twice for one: the callers refuse a second
claim of the same thing locally first. If the connection is lost (an error, a
statement or a connect that outlasts `timeout_s`, or a close found before the next
batch), every claim is gone with it (PostgreSQL released them, or will when it sees
the socket close); it is logged, `held` is emptied, unlocks still queued for the old
session are dropped, the requests already running go on unguarded (the unique
idempotency_keys row still stops a second effect: KeyCommittedConcurrently), and the
next claim opens a new connection. A statement that fails on a live session (say,
out of shared memory for the lock table) costs no other claim: its batch's takers get
the error, and whatever of its batch took effect is read back from pg_locks and
undone.

The timeouts are the client's: a PostgreSQL host that goes silent answers no
statement, and without them one batch would wait for TCP to give up (some 15 minutes)
while every keyed POST, import, export, audit and `as_of` of the process queued
behind it. The server-side keepalives (services/bootstrap.py) cover the other
direction: a holder whose host vanished loses its claims. asyncpg offers no client
keepalive option; an idle session needs none here, since the next batch has
`timeout_s` to answer.

Keys are 64-bit: a hash of what is claimed (lock_key), in PostgreSQL's one-bigint
advisory key space. Two different claims with the same hash (odds 2^-64 a pair) would
only refuse one of them 409/429 while the other runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from shared.store.postgres import CONNECTION_ERRORS

log = logging.getLogger(__name__)

# Locks (take true) and unlocks (take false) in the order asked: a function scan of
# unnest returns the arrays' elements in order, and each row's function runs as it is
# produced, so an unlock of a key runs before a later lock of it in the same batch.
_BATCH = """
SELECT CASE WHEN t.take THEN pg_try_advisory_lock(t.key)
            ELSE pg_advisory_unlock(t.key) END AS done
FROM unnest($1::bigint[], $2::boolean[]) AS t(key, take)
"""


# The session's own advisory locks on one bigint key (PostgreSQL splits the key: high
# 32 bits in classid, low in objid, objsubid 1), as that key.
_HELD = """
SELECT (classid::bigint << 32) | objid::bigint AS key FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 1 AND pid = pg_backend_pid()
"""
_Claim = tuple[int, bool, "asyncio.Future[bool] | None"]


def lock_key(*parts: str | int) -> int:
    """A stable signed 64-bit key for what the parts name (never Python's hash())."""
    text = "\0".join(str(part) for part in parts).encode()
    digest = hashlib.blake2b(text, digest_size=8, person=b"ledger.claim").digest()
    return int.from_bytes(digest, "big", signed=True)


class SessionLocks:
    """The process's claims, on one connection opened by `opener` when first needed
    (and again after a loss); each statement has `timeout_s` to answer."""

    def __init__(
        self, opener: Callable[[], Awaitable[asyncpg.Connection]], timeout_s: float
    ) -> None:
        self._opener = opener
        self._timeout_s = timeout_s
        self._conn: asyncpg.Connection | None = None
        self._pending: list[_Claim] = []
        self._flushing: asyncio.Task[None] | None = None
        self.held: set[int] = set()

    async def try_lock(self, key: int) -> bool:
        """Take `key` for the service, or False if another process holds it (a
        connection error when PostgreSQL cannot be reached: the caller's 503)."""
        assert key not in self.held, "the caller claims each thing once per process"
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._enqueue(key, True, future)
        try:
            return await future
        except asyncio.CancelledError:
            # Cancelled after its batch granted the key (the result was set, this
            # task had not resumed yet): give it back, or PostgreSQL and `held` keep
            # it and the next claim of the key fails the assertion above.
            granted = future.done() and not future.cancelled()
            if granted and future.exception() is None and future.result():
                self.unlock(key)
            raise

    def unlock(self, key: int) -> None:
        """Give `key` back (sent with the next batch; nothing to wait for). A key
        lost with its connection is gone already."""
        if key in self.held:
            self.held.discard(key)
            self._enqueue(key, False, None)

    async def close(self) -> None:
        """Close the connection, which releases every claim still held."""
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        self._lost()

    def _enqueue(
        self, key: int, take: bool, future: asyncio.Future[bool] | None
    ) -> None:
        self._pending.append((key, take, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            if self._conn is not None and self._conn.is_closed():
                log.warning(
                    "the claims connection was closed; its %d claims went with it",
                    len(self.held),
                )
                self._lost()
            if self._conn is None:  # the old session's unlocks went with it
                batch = [claim for claim in batch if claim[1]]
            try:
                rows = await self._run(batch)
            except CONNECTION_ERRORS as error:
                log.warning("the claims connection failed: %r", error)
                self._lost()
                _fail(batch, error)
                continue
            except asyncpg.PostgresError as error:
                log.warning("a claims statement failed: %r", error)
                await self._undo(batch)
                _fail(batch, error)
                continue
            for (key, take, future), row in zip(batch, rows, strict=True):
                if take:
                    self._granted(key, bool(row["done"]), future)

    async def _run(self, batch: list[_Claim]) -> list[asyncpg.Record]:
        if not batch:
            return []
        if self._conn is None:
            self._conn = await asyncio.wait_for(self._opener(), self._timeout_s)
        conn: asyncpg.Connection = self._conn
        keys, takes = [key for key, _, _ in batch], [take for _, take, _ in batch]
        rows: list[asyncpg.Record] = await conn.fetch(
            _BATCH, keys, takes, timeout=self._timeout_s
        )
        return rows

    async def _undo(self, batch: list[_Claim]) -> None:
        """After a failed statement: which of its locks and unlocks ran is unknown,
        so read the session's locks back and put an unlock of each of the batch's
        keys it holds first in the queue, before any later claim of the same key
        (none of them is in `held`: a held key is never asked again, and an unlocked
        one left it). The session and its other claims stay."""
        assert self._conn is not None
        try:
            rows = await self._conn.fetch(_HELD, timeout=self._timeout_s)
        except (*CONNECTION_ERRORS, asyncpg.PostgresError) as error:
            log.warning("the claims connection failed: %r", error)
            self._lost()
            return
        session = {row["key"] for row in rows}
        undone = sorted({key for key, _, _ in batch} & session)
        self._pending[:0] = [(key, False, None) for key in undone]

    def _granted(
        self, key: int, done: bool, future: asyncio.Future[bool] | None
    ) -> None:
        assert future is not None
        if done:
            self.held.add(key)
        if future.cancelled():  # its request went away while the lock was asked
            self.unlock(key)
        else:
            future.set_result(done)

    def _lost(self) -> None:
        self.held.clear()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()


def _fail(batch: list[_Claim], error: BaseException) -> None:
    for _, _, future in batch:
        if future is not None and not future.done():
            future.set_exception(error)


SESSION_LOCKS = web.AppKey("session_locks", SessionLocks)
