"""The webhook routes: endpoints of the caller's business, their secrets and their
delivery log (README "Webhooks").

Creating an endpoint binds the webhook worker's queue to the business's events
(shared/bus/webhook_queue.py) before it answers, inside the transaction that writes
the endpoint: every event committed after the 201 reaches the queue. The endpoint
starts after the store's last position read after the binding (its start_position,
migration 0020): older events, republished later, are not queued for it. When
RabbitMQ cannot be reached the answer is a 503 and nothing is written.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from aiohttp import web

from services import bootstrap
from services.http.edge import (
    POOL,
    SETTINGS,
    business_of,
    json_response,
    path_id,
    read_json_object,
    whole_number,
)
from services.http.health import BROKER
from services.webhooks import endpoints, secrets
from services.webhooks.addresses import check_url_addresses
from services.webhooks.bodies import (
    DELIVERIES_LIMIT_DEFAULT,
    DELIVERIES_LIMIT_MAX,
    WebhookBody,
    WebhookDeletedBody,
    WebhookListBody,
    WebhookSecretBody,
    new_secret,
    webhook_input,
)
from shared.bus.webhook_queue import bind_business
from shared.errors import NotFound, NotYetVisible, invalid
from shared.webhook_rules import url_port

BIND_TIMEOUT_S = 5.0
WEBHOOK = "/api/v3/webhooks/{id:[0-9]+}"

routes = web.RouteTableDef()


class BrokerUnavailable(NotYetVisible):
    def __init__(self) -> None:
        super().__init__("RabbitMQ cannot be reached; retry")


def _missing() -> NotFound:
    return NotFound("Webhook endpoint not found")


async def _bind(app: web.Application, business_id: int) -> None:
    """Bind the worker's queue to the business's events, or BrokerUnavailable."""
    holder = app[BROKER]  # the connection /readyz keeps (services/http/health.py)
    try:
        async with asyncio.timeout(BIND_TIMEOUT_S):
            if not holder or holder[0].is_closed:
                holder[:] = [await bootstrap.readiness_broker(app[SETTINGS])]
            settings = app[SETTINGS]
            async with holder[0].channel() as channel:
                await bind_business(
                    channel, settings.exchange, business_id, settings.queue_type
                )
    except Exception as error:  # any failure: nothing written, 503
        raise BrokerUnavailable() from error


@routes.post("/api/v3/webhooks")
async def create_webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    business_id = business_of(request).business_id
    new = webhook_input((await read_json_object(request))[0], settings)
    if not settings.webhook_allow_private_addresses:
        await check_url_addresses(new.url, url_port(new.url))
    secret = new_secret()
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if await endpoints.lock_business(conn, business_id) >= (
            bound := settings.webhook_endpoints_max
        ):
            raise invalid("url", f"A business may have at most {bound} endpoints.")
        endpoint_id = await endpoints.next_endpoint_id(conn)
        sealed = secrets.seal(settings, business_id, endpoint_id, secret)
        await _bind(request.app, business_id)
        body = await endpoints.insert(conn, endpoint_id, business_id, new, sealed)
    answer = WebhookSecretBody(**_fields(body), secret=secret)
    return json_response(answer, status=201)


def _fields(body: WebhookBody) -> dict[str, Any]:
    return msgspec.structs.asdict(body)


@routes.get("/api/v3/webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    listed = await endpoints.listed(request.app[POOL], business_of(request).business_id)
    return json_response(WebhookListBody(data=listed))


@routes.get(WEBHOOK)
async def get_webhook(request: web.Request) -> web.Response:
    business_id = business_of(request).business_id
    body = await endpoints.one(request.app[POOL], business_id, path_id(request))
    if body is None:
        raise _missing()
    return json_response(body)


@routes.delete(WEBHOOK)
async def delete_webhook(request: web.Request) -> web.Response:
    endpoint_id = path_id(request)
    business_id = business_of(request).business_id
    if not await endpoints.delete(request.app[POOL], business_id, endpoint_id):
        raise _missing()
    message = "Webhook endpoint deleted with its deliveries"
    return json_response(WebhookDeletedBody(message=message, id=endpoint_id))


@routes.post(WEBHOOK + "/enable")
async def enable_webhook(request: web.Request) -> web.Response:
    business_id = business_of(request).business_id
    body = await endpoints.enable(request.app[POOL], business_id, path_id(request))
    if body is None:
        raise _missing()
    return json_response(body)


@routes.post(WEBHOOK + "/rotate-secret")
async def rotate_secret(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    business_id = business_of(request).business_id
    endpoint_id = path_id(request)
    secret = new_secret()
    sealed = secrets.seal(settings, business_id, endpoint_id, secret)
    body = await endpoints.rotate(request.app[POOL], business_id, endpoint_id, sealed)
    if body is None:
        raise _missing()
    return json_response(WebhookSecretBody(**_fields(body), secret=secret))


@routes.get(WEBHOOK + "/deliveries")
async def list_deliveries(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    endpoint_id = path_id(request)
    if await endpoints.one(pool, business_of(request).business_id, endpoint_id) is None:
        raise _missing()
    before = _query_number(request, "before", None, 10**18)
    limit = _query_number(
        request, "limit", DELIVERIES_LIMIT_DEFAULT, DELIVERIES_LIMIT_MAX
    )
    page = await endpoints.deliveries(pool, endpoint_id, before, limit or 1)
    return json_response(page)


@routes.post(WEBHOOK + "/deliveries/{delivery_id:[0-9]+}/retry")
async def retry_delivery(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    endpoint_id = path_id(request)
    if await endpoints.one(pool, business_of(request).business_id, endpoint_id) is None:
        raise _missing()
    body = await endpoints.retry(pool, endpoint_id, path_id(request, "delivery_id"))
    if body is None:
        raise NotFound("Delivery not found")
    return json_response(body, status=202)


def _query_number(
    request: web.Request, name: str, default: int | None, maximum: int
) -> int | None:
    """A whole number 1..maximum from the query (blank: the default), else a 422."""
    text = request.query.get(name, "").strip()
    if text == "":
        return default
    number = whole_number(text)
    if number is None or not 1 <= number <= maximum:
        raise invalid(name, f"The {name} must be a whole number from 1 to {maximum}.")
    return number


def setup(app: web.Application) -> None:
    """The routes; they bind over the API's broker connection (health.setup's)."""
    assert BROKER in app
    app.router.add_routes(routes)
