"""A typed async client for the ledger API and its events, for other services.

`LedgerClient` (HTTP, aiohttp) and `Subscriber` (RabbitMQ, aio-pika); bodies and events
are the service's own msgspec structs. See README "Python client".
"""

from shared.client.errors import (
    BadRequest,
    Conflict,
    IdempotencyInProgress,
    LedgerApiError,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    ServerError,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
    Unreachable,
    UnsupportedMediaType,
    ValidationError,
)
from shared.client.http import LedgerClient
from shared.client.models import (
    ClientChanges,
    Committed,
    NewClient,
    Versioned,
    minor_units,
)
from shared.client.subscriber import RecentEvents, SeenEvents, Subscriber
from shared.client.transport import RetryPolicy
from shared.client.webhook_signature import signature_header, verify_signature

__all__ = [
    "BadRequest",
    "ClientChanges",
    "Committed",
    "Conflict",
    "IdempotencyInProgress",
    "LedgerApiError",
    "LedgerClient",
    "NewClient",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "RecentEvents",
    "RetryPolicy",
    "SeenEvents",
    "ServerError",
    "Subscriber",
    "TooManyRequests",
    "Unauthenticated",
    "Unavailable",
    "Unreachable",
    "UnsupportedMediaType",
    "ValidationError",
    "Versioned",
    "minor_units",
    "signature_header",
    "verify_signature",
]
