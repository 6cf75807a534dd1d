"""The API process's one LISTEN connection (opened by services/bootstrap.
read_your_writes_listener) and the channels it serves: `ledger_projected` for
read-your-writes and `ledger_api_keys` for the key cache
(services/http/projection_wait.py wires both).

What listens must know when the connection is lost, since notifications sent
meanwhile never arrive: on_change() is told None at the loss and the connection again
once a new one listens on every channel. A new one is opened only with a `reopen`
(the bootstrap's opener); without it the process goes on unlistening, its readers
falling back to what needs no notification (the waiter's timer, the key lookups).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger(__name__)
Notified = Callable[[asyncpg.Connection, int, str, str], None]
Changed = Callable[[asyncpg.Connection | None], None]
# Between attempts to open a lost LISTEN connection again.
REOPEN_PAUSE_S = 1.0


class ListenConnection:
    """Callbacks per channel on a LISTEN connection, listened again after a loss."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        reopen: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
    ) -> None:
        self._conn: asyncpg.Connection | None = conn
        self._reopen = reopen
        self._channels: dict[str, Notified] = {}
        self._changed: list[Changed] = []
        self._opened: list[asyncpg.Connection] = []  # closed by stop(); not `conn`
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def listen(self, channel: str, callback: Notified) -> None:
        """Call `callback` for each notification on `channel` (before start())."""
        self._channels[channel] = callback

    def on_change(self, callback: Changed) -> None:
        """Call `callback(conn)` when `conn` listens on every channel, and
        `callback(None)` when it is lost."""
        self._changed.append(callback)

    async def start(self) -> None:
        assert self._conn is not None
        await self._attach(self._conn)

    async def stop(self) -> None:
        """Stop reopening and close the connections this object opened (the first
        one belongs to whoever gave it)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for conn in self._opened:
            with contextlib.suppress(Exception):
                await conn.close(timeout=1.0)

    async def _attach(self, conn: asyncpg.Connection) -> None:
        for channel, notified in self._channels.items():
            await conn.add_listener(channel, notified)
        conn.add_termination_listener(self._lost)
        self._conn = conn
        for callback in self._changed:
            callback(conn)
        if conn.is_closed():  # lost while listening: its termination call is past
            self._lost(conn)

    def _lost(self, conn: asyncpg.Connection) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        for callback in self._changed:
            callback(None)
        if self._stopping or self._reopen is None:
            if not self._stopping:
                log.warning("the LISTEN connection is lost; not reopened")
            return
        log.warning("the LISTEN connection is lost; reopening it")
        self._task = asyncio.create_task(self._listen_again(), name="listen-again")

    async def _listen_again(self) -> None:
        assert self._reopen is not None
        while True:
            await asyncio.sleep(REOPEN_PAUSE_S)
            try:
                conn = await self._reopen()
            except Exception as error:  # the server may still be away: try again
                log.warning("reopening the LISTEN connection failed: %r", error)
                continue
            self._opened = [old for old in self._opened if not old.is_closed()]
            self._opened.append(conn)
            try:
                await self._attach(conn)
            except Exception as error:
                log.warning("listening on the new connection failed: %r", error)
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1.0)
                continue
            log.info("listening again")
            return
