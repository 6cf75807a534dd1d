"""A TCP proxy in front of PostgreSQL that can lose the reply to one COMMIT.

A service pointed at the proxy talks to the real server through it, byte for byte.
Once `arm`ed, the proxy lets the next client message holding a COMMIT through, waits
until PostgreSQL's reply to it arrives (the commit is then applied and durable), and
closes that client connection without passing the reply on: the sender sees its
connection die at COMMIT and cannot know the outcome, the case the appender must
settle by asking the store. Other connections go on untouched.

Armed with `at_send=True`, it closes the client connection as soon as the COMMIT is
passed on, before PostgreSQL has answered (or even finished) it, and keeps the server
side open so that the COMMIT goes on: the sender then asks about a transaction that
may still be in progress.
"""

from __future__ import annotations

import asyncio

CHUNK_BYTES = 65536
# The CommandComplete tag PostgreSQL sends when a COMMIT is applied.
COMMITTED_TAG = b"COMMIT\x00"


class CommitCutter:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._armed = False
        self._at_send = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.reply_lost = asyncio.Event()  # a COMMIT was applied, its reply dropped
        self.client_cut = asyncio.Event()  # at_send: the client's connection is gone

    async def start(self) -> int:
        """Listen on a free local port, and return it."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def arm(self, at_send: bool = False) -> None:
        self._armed = True
        self._at_send = at_send

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        server_reader, server_writer = await asyncio.open_connection(*self._target)
        cutting = asyncio.Event()  # this connection's COMMIT reply is to be dropped
        try:
            await asyncio.gather(
                self._upstream(client_reader, server_writer, cutting, client_writer),
                self._downstream(server_reader, client_writer, cutting),
            )
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            for writer in (client_writer, server_writer):
                writer.transport.abort()
            self._tasks.discard(task)

    async def _upstream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        cutting: asyncio.Event,
        client: asyncio.StreamWriter,
    ) -> None:
        while chunk := await reader.read(CHUNK_BYTES):
            cut_now = False
            if self._armed and b"COMMIT" in chunk:
                self._armed = False
                cutting.set()  # before the server can answer it
                cut_now = self._at_send
            writer.write(chunk)
            await writer.drain()
            if cut_now:  # the server side stays open: its COMMIT goes on
                client.transport.abort()
                self.client_cut.set()
                return
        writer.transport.abort()

    async def _downstream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        cutting: asyncio.Event,
    ) -> None:
        received = b""
        while chunk := await reader.read(CHUNK_BYTES):
            if not cutting.is_set():
                writer.write(chunk)
                await writer.drain()
                continue
            received += chunk
            if COMMITTED_TAG in received:
                writer.transport.abort()  # the client never sees the reply
                self.reply_lost.set()
                return
        writer.transport.abort()
