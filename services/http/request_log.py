"""One log line per HTTP request, and the request id that ties lines together.

Every request gets an id: the caller's `X-Request-Id` when it is 1 to 255 printable
ASCII characters, else a fresh one. It is echoed in the response's `X-Request-Id`,
it is the correlation id of the events a command appends unless the caller sent
`X-Correlation-Id` (services/command_api/routes.py; an import's is its import id),
and it is in the request's log line with the method, the route (its pattern, not the
raw path), the status, the duration, the business and the correlation id.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

from aiohttp import web

from services.http.edge import BUSINESS, Handler, printable
from shared import uuids

REQUEST_ID = web.RequestKey("request_id", str)
CORRELATION_ID = web.RequestKey("correlation_id", str)
REQUEST_ID_LENGTH_MAX = 255
UNMATCHED_ROUTE = "unmatched"
# Not a real HTTP status: the request ended without a response (the client went
# away, or the server stopped before it finished), as nginx logs it.
CLIENT_CLOSED = 499

log = logging.getLogger("ledger.request")


def request_id_from(header: str | None) -> str:
    """The caller's request id if it can be stored and echoed, else a fresh one."""
    if header is not None and len(header) <= REQUEST_ID_LENGTH_MAX:
        if printable(header.strip()):
            return header.strip()
    return str(uuids.uuid4())


def route_of(request: web.Request) -> str:
    """The route's pattern (`/api/v3/clients/{id}`): a bounded set of values, unlike
    raw paths, so it can label metrics."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


@web.middleware
async def request_log_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    request[REQUEST_ID] = request_id_from(request.headers.get("X-Request-Id"))
    return await timed(request, handler, functools.partial(_log, request))


async def timed(
    request: web.Request, handler: Handler, done: Callable[[int, float], None]
) -> web.StreamResponse:
    """Await the handler, then call `done(status, duration_s)` however it ended: the
    response's status, an HTTPException's (redirects and the like: passed on), or
    CLIENT_CLOSED when it ended without a response. The request log and the metrics
    middleware both see requests this way."""
    started = time.perf_counter()
    status = CLIENT_CLOSED
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        done(status, time.perf_counter() - started)


def _log(request: web.Request, status: int, duration_s: float) -> None:
    business = request.get(BUSINESS)
    route = route_of(request)
    log.info(
        "%s %s %d",
        request.method,
        route,
        status,
        extra={
            "event": "http.request",
            "method": request.method,
            "route": route,
            "status": status,
            "duration_ms": round(duration_s * 1000, 3),
            "request_id": request[REQUEST_ID],
            "business_id": business.business_id if business is not None else None,
            "correlation_id": request.get(CORRELATION_ID),
        },
    )


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, streamed ones too, carries the id."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers["X-Request-Id"] = request_id


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(echo_request_id)
