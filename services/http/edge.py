"""The HTTP edge both APIs share: error mapping, API-key auth and JSON bodies.

Every refusal leaves as JSON in the Laravel shape the original API's clients parse:
422 `{"message", "errors": {field: [...]}}`, anything else `{"message"}`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal

import asyncpg
import msgspec
from aiohttp import web

from services.http.fair_use import client_address, fair_use_of
from services.http.projection_wait import WAITER
from shared.clock import Clock
from shared.config import Settings
from shared.errors import LedgerError, ValidationFailed
from shared.store.api_keys import Business, business_for_key
from shared.store.postgres import CONNECTION_ERRORS

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BUSINESS = web.RequestKey("business", Business)
POOL = web.AppKey("pool", asyncpg.Pool)
SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)  # shared/clock.py: every "now" of the app

_encoder = msgspec.json.Encoder(decimal_format="number")
# JSON numbers decode as Decimal, never float: an amount stays exact from the wire on.
_body_decoder = msgspec.json.Decoder(float_hook=Decimal)
PUBLIC_PREFIXES = ("/healthz", "/readyz", "/metrics", "/docs")
# The export needs no API key: the business's bid in its path is the capability.
EXPORT_ROUTE = "/api/v3/clients/clients-print/{bid}"


class BodyTimeout(TimeoutError):
    """The request body did not arrive whole in time (services/http/body_deadline.py).

    A TimeoutError, so that aiohttp's own drain of an unread body after the answer
    stops on it quietly instead of logging it as an unhandled error."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"request body not complete within {timeout_s:g} s")
        self.timeout_s = timeout_s


class MessageBody(msgspec.Struct, frozen=True):
    """Every refusal but a 422: `{"message": ...}`."""

    message: str


class ValidationBody(msgspec.Struct, frozen=True):
    """A 422: Laravel's `{"message", "errors": {field: [message, ...]}}`."""

    message: str
    errors: dict[str, list[str]]


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    raw = body if isinstance(body, bytes) else _encoder.encode(body)
    return web.Response(
        body=raw, status=status, content_type="application/json", headers=headers
    )


def error_response(status: int, message: str) -> web.Response:
    return json_response(MessageBody(message=message), status=status)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ValidationFailed as error:
        body = ValidationBody(message=error.message, errors=error.errors)
        return json_response(body, status=error.status)
    except LedgerError as error:
        response = error_response(error.status, error.message)
        if error.retry_after_s is not None:  # 429, and the 503s worth retrying
            response.headers["Retry-After"] = str(error.retry_after_s)
        return response
    except BodyTimeout as error:
        message = f"The request body did not arrive within {error.timeout_s:g} s"
        response = error_response(408, message)
        response.force_close()  # the rest of the body is not worth waiting for
        return response
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "The request body is too large (1 MiB at most)")
    except web.HTTPException as error:
        if error.status < 400:
            raise
        response = error_response(error.status, error.reason)
        if "Allow" in error.headers:  # a 405 names the methods the path has
            response.headers["Allow"] = error.headers["Allow"]
        return response
    except CONNECTION_ERRORS as error:
        log.warning("%s %s: unavailable: %r", request.method, request.path, error)
        response = error_response(503, "The service is temporarily unavailable; retry")
        response.headers["Retry-After"] = "1"
        return response
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "Server Error")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(PUBLIC_PREFIXES) or _is_public(request):
        return await handler(request)
    fair_use, address = fair_use_of(request), client_address(request)
    # An address that used up its failed authentications is refused before its key
    # is looked up: a flood of bad keys then costs no database query.
    fair_use.refuse_failing_address(address)
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    business = None
    if scheme.lower() == "bearer" and printable(key.strip()):
        business = await _business_for_key(request, key.strip())
    if business is None:
        await fair_use.note_failure(address)
        return error_response(401, "Unauthenticated.")
    await fair_use.admit_key(business.key_id)
    request[BUSINESS] = business
    return await handler(request)


async def _business_for_key(request: web.Request, key: str) -> Business | None:
    """The key's business, through the process's key cache (kept honest by the
    waiter's LISTEN connection: services/http/api_key_cache.py) once it runs."""
    waiter = request.app.get(WAITER)
    if waiter is None:
        return await business_for_key(request.app[POOL], key)
    return await waiter.api_keys.business(request.app[POOL], key)


def _is_public(request: web.Request) -> bool:
    if request.path in ("/api/v3/openapi.json", "/api/v3/asyncapi.json"):
        return True
    # Public by the route matched, not by a path prefix: a prefix also let
    # `POST /api/v3/clients/clients-print/transactions` through, without a key, to a
    # client route that takes `clients-print` for a client id.
    resource = request.match_info.route.resource
    return resource is not None and resource.canonical == EXPORT_ROUTE


def business_of(request: web.Request) -> Business:
    business = request[BUSINESS]
    assert isinstance(business, Business)
    return business


async def read_json_object(request: web.Request) -> tuple[dict[str, object], bytes]:
    """The body as a JSON object (an empty body is `{}`) and its raw bytes."""
    raw = await request.read()
    if not raw.strip():
        return {}, raw
    content_type = request.content_type
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise web.HTTPUnsupportedMediaType(
            reason="The request body must be JSON (Content-Type: application/json)"
        )
    try:
        value = _body_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        # Invalid UTF-8 and nesting deeper than the decoder's recursion limit are
        # malformed bodies too (both escaped as 500s before).
        raise web.HTTPBadRequest(reason="The request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise web.HTTPBadRequest(reason="The request body must be a JSON object")
    return value, raw


def printable(text: str) -> bool:
    """Non-empty printable ASCII: header values holding other bytes (aiohttp decodes
    them to lone surrogates, which cannot be encoded again) are refused at the edge."""
    return bool(text) and text.isascii() and text.isprintable()


def whole_number(text: str) -> int | None:
    """`text` as a whole number if it is 1 to 18 ASCII digits (so it fits a bigint),
    else None, which each caller refuses its own way (404, 412, 422). Only 0-9:
    str.isdigit() also accepts characters like "²" that int() refuses, and int()
    refuses more than 4,300 digits (a ValueError, which would be a 500)."""
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    return None


def path_id(request: web.Request, name: str = "id") -> int:
    """A numeric path id; anything else (or out of range) answers 404."""
    number = whole_number(request.match_info[name])
    if number is None:
        raise web.HTTPNotFound(reason="Not Found")
    return number
