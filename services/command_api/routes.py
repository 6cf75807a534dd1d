"""Hop 1: the command routes. Decode, hand to the appender, await read-your-writes."""

from __future__ import annotations

import datetime as dt

import msgspec
from aiohttp import web

from services.command_api import (
    idempotency,
    monitor_bodies,
    renderers,
    request_bodies,
)
from services.command_api.appender import Appender
from services.command_api.submissions import IdempotencyClaim, Render, Result
from services.http.edge import (
    CLOCK,
    POOL,
    SETTINGS,
    business_of,
    json_response,
    path_id,
    printable,
    read_json_object,
    whole_number,
)
from services.http.projection_wait import WAITER
from services.http.replica_reads import visible_everywhere
from services.http.request_log import CORRELATION_ID, REQUEST_ID
from shared import commands as c
from shared import uuids
from shared.errors import PreconditionFailed
from shared.events import Metadata

APPENDER = web.AppKey("appender", Appender)
# Ids are digits in the route itself: a fixed path beside it (`/clients/category`,
# `/clients/categories`) is then never taken for an id, and a method it lacks answers
# 405 with its own Allow instead of a client route's 404.
CLIENT = "/api/v3/clients/{id:[0-9]+}"
MONITOR = "/api/v3/monitors/{id:" + uuids.PATTERN + "}"

routes = web.RouteTableDef()


def _today(request: web.Request) -> dt.date:
    """The UTC date now, by the app's clock: the bound of a posting's date."""
    return request.app[CLOCK].today()


def _claim(request: web.Request, raw: bytes) -> IdempotencyClaim | None:
    return idempotency.request_claim(
        request, [request.method.encode(), request.path.encode(), raw]
    )


def _metadata(request: web.Request, claim: IdempotencyClaim | None) -> Metadata:
    business = business_of(request)
    # The caller's X-Correlation-Id, else the request id (the caller's X-Request-Id
    # when it is usable, else a fresh one: services/http/request_log.py).
    correlation = request.headers.get("X-Correlation-Id")
    if correlation is not None and not printable(correlation):
        correlation = None  # an id we cannot store is replaced by a fresh one
    correlation = (correlation or request.get(REQUEST_ID) or str(uuids.uuid4()))[:255]
    request[CORRELATION_ID] = correlation
    return Metadata(
        correlation_id=correlation,
        principal=f"api_key:{business.key_id}",
        idempotency_key=claim.key if claim else None,
    )


async def _execute(
    request: web.Request, command: c.LedgerCommand, render: Render, raw: bytes
) -> web.Response:
    """Submit a command; answer once the read models show it (or 202 on time-out)."""
    claim = _claim(request, raw)
    async with idempotency.in_flight(request, command.business_id, claim):
        # Taken before the commit: the waiter then skips checks that cannot succeed.
        mark = request.app[WAITER].mark()
        result = await request.app[APPENDER].submit(
            command, _metadata(request, claim), render, claim
        )
        return await _respond(request, command.business_id, result, claim, mark)


async def _respond(
    request: web.Request,
    business_id: int,
    result: Result,
    claim: IdempotencyClaim | None,
    mark: int,
) -> web.Response:
    headers: dict[str, str] = {}
    status = result.status
    if result.position is not None:
        headers["X-Ledger-Position"] = str(result.position)
        if result.stream_id is not None and result.version is not None:
            waiter = request.app[WAITER]
            waiter.committed(result.position, result.stream_id, result.version, mark)
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    if not await _visible(request, result, mark):
        status = 202
        if claim is not None:  # a retry must answer what this request answers
            await idempotency.mark_accepted(request.app[POOL], business_id, claim.key)
    return json_response(result.body, status=status, headers=headers)


async def _visible(request: web.Request, result: Result, mark: int) -> bool:
    """Whether the read models show the result's events (bounded wait), so that the
    answer may keep its 2xx; `Prefer: respond-async` does not wait (202).

    A replay waits too: after a crash between COMMIT and the answer, the retry can
    arrive before the projectors applied what the first attempt committed, and the
    stored 201 was the answer the first attempt would have sent only once visible.
    A replay of a 202, or of a result without events, is answered as stored."""
    timeout_s = request.app[SETTINGS].read_your_writes_timeout_s
    asynchronous = "respond-async" in request.headers.get("Prefer", "")
    waiter = request.app[WAITER]
    if result.replayed:
        if result.status == 202 or result.position is None or asynchronous:
            return True
        projected = waiter.wait_for_position(result.position, timeout_s)
    elif result.stream_id is None or result.version is None:
        return True
    elif asynchronous:
        return False
    else:
        projected = waiter.wait_for_stream(
            result.stream_id, result.version, timeout_s, mark
        )
    # Then every read replica in rotation (services/http/replica_reads.py).
    return await visible_everywhere(request, projected, timeout_s)


def _expected_version(request: web.Request) -> int | None:
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    version = whole_number(header.strip().removeprefix("W/").strip('"'))
    if version is None:
        raise PreconditionFailed("The If-Match header does not match the client's ETag")
    return version


@routes.post("/api/v3/clients")
async def create_client(request: web.Request) -> web.Response:
    business = business_of(request)
    body, raw = await read_json_object(request)
    command = request_bodies.create_client(body, business.business_id)
    return await _execute(request, command, renderers.client(business, 201), raw)


@routes.post("/api/v3/clients/category")
async def create_category(request: web.Request) -> web.Response:
    business = business_of(request)
    body, raw = await read_json_object(request)
    command = request_bodies.create_category(body, business.business_id)
    return await _execute(request, command, renderers.category, raw)


@routes.post(CLIENT)
async def update_client(request: web.Request) -> web.Response:
    business = business_of(request)
    client_id = path_id(request)
    body, raw = await read_json_object(request)
    # Malformed input (422) is refused before a stale If-Match (412) is.
    _claim(request, raw)
    command = request_bodies.update_client(body, business.business_id, client_id, None)
    command = msgspec.structs.replace(
        command, expected_version=_expected_version(request)
    )
    return await _execute(request, command, renderers.client(business, 200), raw)


@routes.delete(CLIENT)
async def delete_client(request: web.Request) -> web.Response:
    business = business_of(request)
    command = c.DeleteClient(
        business_id=business.business_id, client_id=path_id(request)
    )
    return await _execute(request, command, renderers.deleted, b"")


@routes.post(CLIENT + r"/erase")
async def erase_client(request: web.Request) -> web.Response:
    """Erase the client's personal data (archived and deleted clients too): 200 with
    its body, personal fields null and `"erased": true`; again, the same 200."""
    business = business_of(request)
    _, raw = await read_json_object(request)
    command = c.EraseClient(
        business_id=business.business_id, client_id=path_id(request)
    )
    return await _execute(request, command, renderers.client(business, 200), raw)


@routes.post(CLIENT + r"/archive")
async def archive_client(request: web.Request) -> web.Response:
    business = business_of(request)
    client_id = path_id(request)
    body, raw = await read_json_object(request)
    command = request_bodies.set_archived(body, business.business_id, client_id)
    return await _execute(request, command, renderers.client(business, 200), raw)


@routes.post(CLIENT + r"/transactions")
async def post_transaction(request: web.Request) -> web.Response:
    business = business_of(request)
    client_id = path_id(request)
    body, raw = await read_json_object(request)
    today = _today(request)
    command = request_bodies.post_transaction(
        body, business.business_id, client_id, today
    )
    return await _execute(request, command, renderers.transaction, raw)


@routes.post(CLIENT + r"/deposits")
async def post_deposit(request: web.Request) -> web.Response:
    business = business_of(request)
    client_id = path_id(request)
    body, raw = await read_json_object(request)
    today = _today(request)
    command = request_bodies.post_deposit(body, business.business_id, client_id, today)
    return await _execute(request, command, renderers.deposit, raw)


@routes.post(CLIENT + r"/transactions/{transaction_id:[0-9]+}/reverse")
async def reverse_transaction(request: web.Request) -> web.Response:
    business = business_of(request)
    client_id = path_id(request)
    transaction_id = path_id(request, "transaction_id")
    body, raw = await read_json_object(request)
    command = c.ReverseTransaction(
        business_id=business.business_id,
        client_id=client_id,
        transaction_id=transaction_id,
        reason=request_bodies.reason(body),
    )
    return await _execute(request, command, renderers.transaction_reversal, raw)


@routes.post(CLIENT + r"/deposits/{deposit_id:[0-9]+}/reverse")
async def reverse_deposit(request: web.Request) -> web.Response:
    business = business_of(request)
    client_id = path_id(request)
    deposit_id = path_id(request, "deposit_id")
    body, raw = await read_json_object(request)
    command = c.ReverseDeposit(
        business_id=business.business_id,
        client_id=client_id,
        deposit_id=deposit_id,
        reason=request_bodies.reason(body),
    )
    return await _execute(request, command, renderers.deposit_reversal, raw)


@routes.post("/api/v3/monitors")
async def create_monitor(request: web.Request) -> web.Response:
    business = business_of(request)
    body, raw = await read_json_object(request)
    monitor_id = str(uuids.uuid4())
    command = monitor_bodies.create_monitor(body, business.business_id, monitor_id)
    monitors_max = request.app[SETTINGS].monitors_per_business_max
    async with monitor_bodies.room(
        request.app[POOL], business.business_id, monitors_max
    ):
        return await _execute(request, command, renderers.monitor, raw)


@routes.delete(MONITOR)
async def delete_monitor(request: web.Request) -> web.Response:
    business = business_of(request)
    command = c.DeleteMonitor(
        business_id=business.business_id, monitor_id=request.match_info["id"]
    )
    return await _execute(request, command, renderers.monitor_deleted, b"")
