"""The webhook routes (routes.py) as the OpenAPI document describes them."""

from __future__ import annotations

from services.api_docs.operation import Operation, answer, ref
from services.api_docs.parameters import header, path_id, query
from services.webhooks import bodies
from services.webhooks.bodies import DELIVERIES_LIMIT_DEFAULT, DELIVERIES_LIMIT_MAX
from shared.client.webhook_signature import EVENT_ID_HEADER, SIGNATURE_HEADER
from shared.events import Envelope

BODIES = (
    bodies.WebhookInput,
    bodies.WebhookBody,
    bodies.WebhookSecretBody,
    bodies.WebhookListBody,
    bodies.WebhookDeletedBody,
    bodies.DeliveryBody,
    bodies.DeliveryPageBody,
)
_WEBHOOK = "/api/v3/webhooks/{id}"
_ID = path_id("id", "The webhook endpoint's id.")
_DELIVERY_ID = path_id("delivery_id", "The delivery's id (from the delivery log).")
_PAGE = (
    query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": DELIVERIES_LIMIT_MAX},
        f"Deliveries per page ({DELIVERIES_LIMIT_DEFAULT} when absent).",
    ),
    query(
        "before",
        {"type": "integer", "minimum": 1},
        "Only deliveries with a lower id: the previous page's `next_before`.",
    ),
)


def _webhook(
    method: str,
    path: str,
    operation_id: str,
    summary: str,
    body: type,
    status: int = 200,
    errors: tuple[int, ...] = (404,),
    parameters: tuple[dict[str, object], ...] = (_ID,),
) -> Operation:
    return Operation(
        method,
        path,
        operation_id,
        summary,
        "webhooks",
        [answer(ref(body), status)],
        errors=errors,
        parameters=list(parameters),
    )


OPERATIONS = [
    Operation(
        "post",
        "/api/v3/webhooks",
        "createWebhook",
        "Register a webhook endpoint: its secret is in this answer only (503: RabbitMQ"
        " unreachable, nothing written)",
        "webhooks",
        [answer(ref(bodies.WebhookSecretBody), 201)],
        errors=(400, 408, 413, 415, 422, 503),
        body=bodies.WebhookInput,
    ),
    _webhook(
        "get",
        "/api/v3/webhooks",
        "listWebhooks",
        "The business's webhook endpoints",
        bodies.WebhookListBody,
        errors=(),
        parameters=(),
    ),
    _webhook("get", _WEBHOOK, "getWebhook", "One endpoint", bodies.WebhookBody),
    _webhook(
        "delete",
        _WEBHOOK,
        "deleteWebhook",
        "Delete an endpoint and its deliveries",
        bodies.WebhookDeletedBody,
    ),
    _webhook(
        "post",
        _WEBHOOK + "/enable",
        "enableWebhook",
        "Enable an endpoint again: its queued deliveries go out in order",
        bodies.WebhookBody,
    ),
    _webhook(
        "post",
        _WEBHOOK + "/rotate-secret",
        "rotateWebhookSecret",
        "Replace the endpoint's secret (the new one is in this answer only)",
        bodies.WebhookSecretBody,
    ),
    _webhook(
        "get",
        _WEBHOOK + "/deliveries",
        "listWebhookDeliveries",
        "The endpoint's delivery log, newest first",
        bodies.DeliveryPageBody,
        errors=(404, 422),
        parameters=(_ID, *_PAGE),
    ),
    _webhook(
        "post",
        _WEBHOOK + "/deliveries/{delivery_id}/retry",
        "retryWebhookDelivery",
        "Queue a delivery again (due now, in its position among the pending ones)",
        bodies.DeliveryBody,
        status=202,
        parameters=(_ID, _DELIVERY_ID),
    ),
]


# What the worker sends each endpoint: OpenAPI 3.1's top-level `webhooks`.
DELIVERY: dict[str, object] = {
    "ledgerEvent": {
        "post": {
            "operationId": "deliverEvent",
            "summary": "A delivery to a webhook endpoint: one event, as published",
            "description": (
                "The body is the event's envelope exactly as RabbitMQ carries it."
                " Verify `X-Ledger-Signature` (shared.client.verify_signature) and"
                " dedupe by `X-Ledger-Event-Id`: a delivery may come more than once."
                " Each endpoint gets its events one at a time in position order."
            ),
            "security": [],
            "parameters": [
                header(
                    EVENT_ID_HEADER,
                    {"type": "string", "format": "uuid"},
                    "The event's id: the same on every delivery of the event.",
                )
                | {"required": True},
                header(
                    SIGNATURE_HEADER,
                    {"type": "string", "pattern": "^t=[0-9]+(,v1=[0-9a-f]{64})+$"},
                    '`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under'
                    " the endpoint's secret>`.",
                )
                | {"required": True},
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref(Envelope)}},
            },
            "responses": {
                "2XX": {"description": "Delivered."},
                "default": {
                    "description": "A failed attempt (a 3xx too: redirects are not"
                    " followed), retried with exponential backoff for up to"
                    " LEDGER_WEBHOOK_RETRY_HORIZON_S."
                },
            },
        }
    }
}
