"""The API's listening socket: a bound on open connections, and protocol errors
answered as JSON.

aiohttp accepts every connection it is offered and answers a request it cannot parse
(an oversized header line, a malformed request line) itself, before any middleware:
as `text/plain`, after logging the parser's exception with a traceback. Here:

- at most `http_connections_max` connections are open at once
  (LEDGER_HTTP_CONNECTIONS_MAX); one more is answered 503 in the Laravel shape with
  `Retry-After` and closed at once, so idle or trickling clients cannot take every
  file descriptor the process has;
- a request the parser refuses gets `{"message": ...}` with aiohttp's status (400 for
  an oversized header line) and one warning line in the log, no traceback;
- every answer names the server `ledger`, not the aiohttp and Python versions.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import cast

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong

log = logging.getLogger(__name__)
REFUSAL_LINGER_S = 1.0
# An idle keep-alive connection is closed after this long: web.run_app's default,
# which the API used before it had a site of its own (RequestHandler's is an hour).
KEEPALIVE_TIMEOUT_S = 75.0
SERVER_NAME = "ledger"  # what the Server header says: no library or version
_encoder = msgspec.json.Encoder()


def _json_head(status: int, body: bytes, extra: str = "") -> bytes:
    reason = HTTPStatus(status).phrase
    return (
        f"HTTP/1.1 {status} {reason}\r\nServer: {SERVER_NAME}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"{extra}Connection: close\r\n\r\n"
    ).encode("ascii")


_BUSY_BODY = _encoder.encode(
    {"message": "Too many connections to the service; retry shortly"}
)
BUSY_ANSWER = _json_head(503, _BUSY_BODY, "Retry-After: 1\r\n") + _BUSY_BODY


class ConnectionGate:
    """How many connections are open, against the bound."""

    def __init__(self, connections_max: int) -> None:
        assert connections_max >= 1
        self.connections_max = connections_max
        self.open = 0


class Refusal(asyncio.Protocol):
    """A connection beyond the bound: a 503 answer, then closed.

    The answer is followed by a FIN and whatever the client sent is read and dropped
    for at most REFUSAL_LINGER_S: closing a socket with unread bytes in it sends a
    reset, which would destroy the answer before the client reads it."""

    def __init__(self) -> None:
        self._closing: asyncio.TimerHandle | None = None

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        # A stream transport, though not an asyncio.WriteTransport by class on uvloop
        # (whose transports subclass none of asyncio's): an isinstance() assertion
        # failed there, and the connection was reset before the answer.
        transport = cast(asyncio.WriteTransport, base)
        transport.write(BUSY_ANSWER)
        if transport.can_write_eof():
            transport.write_eof()
        loop = asyncio.get_running_loop()
        self._closing = loop.call_later(REFUSAL_LINGER_S, transport.close)

    def data_received(self, data: bytes) -> None:
        pass  # the request is not going to be served

    def eof_received(self) -> bool:
        return False  # the client is done: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closing is not None:
            self._closing.cancel()


class EdgeRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, counted against the gate, whose own error
    answers (requests the parser refuses) are JSON and logged without a traceback."""

    def __init__(self, manager: web.Server, gate: ConnectionGate) -> None:
        super().__init__(
            manager,
            loop=asyncio.get_running_loop(),
            keepalive_timeout=KEEPALIVE_TIMEOUT_S,
        )
        self.access_logger = None  # the request log middleware writes one line each
        self._gate: ConnectionGate | None = gate
        gate.open += 1

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._gate is not None:  # once, however often aiohttp calls this
            self._gate.open -= 1
            self._gate = None
        super().connection_lost(exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            self.log_exception("error handling a request", exc_info=exc)
        else:
            log.warning("refused a request aiohttp could not read: %d %r", status, exc)
        if request.writer.output_size > 0:  # as aiohttp: too late to answer
            raise ConnectionError("the answer had begun; no error answer can follow")
        response = web.Response(
            status=status,
            body=_encoder.encode({"message": _message(status, exc)}),
            content_type="application/json",
            headers={"Server": SERVER_NAME},
        )
        response.force_close()
        return response


def _message(status: int, exc: BaseException | None) -> str:
    if isinstance(exc, LineTooLong):
        return f"A request line or header is too long ({exc.args[1]} bytes at most)"
    if status == 400:
        return "The request is not valid HTTP"
    return HTTPStatus(status).phrase


class BoundedSite(web.TCPSite):
    """A TCPSite whose connections go through the gate. With `reuse_port`, several
    API processes listen on the one port (SO_REUSEPORT: the kernel spreads new
    connections over their sockets; a process that dies takes only the connections
    it had accepted or had waiting in its own queue)."""

    __slots__ = ("_gate",)

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        connections_max: int,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, host, port, reuse_port=reuse_port)
        self._gate = ConnectionGate(connections_max)

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        gate = self._gate

        def protocol() -> asyncio.BaseProtocol:
            if gate.open >= gate.connections_max:
                return Refusal()
            return EdgeRequestHandler(server, gate)

        self._server = await asyncio.get_running_loop().create_server(
            protocol,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_port=self._reuse_port,
        )


async def set_server_header(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the Server header says `ledger` (aiohttp only fills it
    in when it is absent)."""
    response.headers["Server"] = SERVER_NAME
