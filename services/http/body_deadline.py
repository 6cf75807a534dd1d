"""A deadline on each request body, so that a client trickling it cannot hold a
connection and a handler open for as long as it likes.

aiohttp waits for body bytes without a limit: a POST that sends one byte a second
stayed open for more than 200 s. Here each request's body must be complete within
`http_body_timeout_s` of its headers (LEDGER_HTTP_BODY_TIMEOUT_S, 60 s by default).
When the deadline passes and the body is still arriving, the body stream fails with
`BodyTimeout`, so whatever is reading it (a JSON body, a multipart upload) stops, and
the error middleware (services/http/edge.py) answers 408 and closes the connection.
A body that has arrived whole, and a request without one, are never affected, however
long the handler then takes.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from services.http.edge import SETTINGS, BodyTimeout, Handler


def _expire(request: web.Request, timeout_s: float) -> None:
    """Fail the body stream if it is still open (a reader then gets BodyTimeout)."""
    if not request.content.is_eof():
        request.content.set_exception(BodyTimeout(timeout_s))


@web.middleware
async def body_deadline_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    if request.content.is_eof():  # no body, or all of it here: nothing to time
        return await handler(request)
    timeout_s = request.app[SETTINGS].http_body_timeout_s
    loop = asyncio.get_running_loop()
    timer = loop.call_later(timeout_s, _expire, request, timeout_s)
    try:
        return await handler(request)
    finally:
        timer.cancel()
