"""The webhook routes' request fields and answers.

A request body is `{"url": ..., "events": [...]}`; every field is checked and every
refusal named at once (422), before anything is written or any address resolved.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated

import msgspec

from shared.config import Settings
from shared.errors import ValidationFailed
from shared.webhook_rules import (
    PATTERN_LENGTH_MAX,
    URL_LENGTH_MAX,
    pattern_problem,
    url_problem,
)

SECRET_PREFIX = "whsec_"
DELIVERIES_LIMIT_MAX = 100
DELIVERIES_LIMIT_DEFAULT = 20


class WebhookInput(msgspec.Struct, kw_only=True, frozen=True):
    """A new endpoint: where to POST, and which events (types or patterns)."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=URL_LENGTH_MAX)]
    events: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=PATTERN_LENGTH_MAX)]],
        msgspec.Meta(min_length=1),
    ]


class WebhookBody(msgspec.Struct, kw_only=True, frozen=True):
    """An endpoint, without its secret (shown only when made or rotated)."""

    id: int
    url: str
    events: list[str]
    enabled: bool
    failures_consecutive: int
    created_at: dt.datetime
    disabled_at: dt.datetime | None
    secret_rotated_at: dt.datetime | None


class WebhookSecretBody(WebhookBody, kw_only=True, frozen=True):
    """An endpoint with its secret: the answer of its creation and of a rotation,
    the only times the secret is shown."""

    secret: str


class WebhookListBody(msgspec.Struct, kw_only=True, frozen=True):
    data: list[WebhookBody]


class DeliveryBody(msgspec.Struct, kw_only=True, frozen=True):
    """One delivery of one event to one endpoint (attempts: since it was queued;
    last_response: the head of the receiver's last answer, at most
    LEDGER_WEBHOOK_RESPONSE_BYTES_MAX bytes of it, decoded as UTF-8)."""

    id: int
    event_id: str
    event_type: str
    event_position: int
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_response: str | None
    created_at: dt.datetime
    first_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None


class DeliveryPageBody(msgspec.Struct, kw_only=True, frozen=True):
    """Deliveries newest first; `next_before` asks for the next page (null: none)."""

    data: list[DeliveryBody]
    next_before: int | None


class WebhookDeletedBody(msgspec.Struct, kw_only=True, frozen=True):
    message: str
    id: int


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def webhook_input(body: dict[str, object], settings: Settings) -> WebhookInput:
    """The body as a new endpoint, or ValidationFailed naming every bad field."""
    errors: dict[str, list[str]] = {}
    url = body.get("url")
    if not isinstance(url, str) or not url:
        errors["url"] = ["The url field is required and must be a string."]
    elif (problem := url_problem(url)) is not None:
        errors["url"] = [problem]
    events = body.get("events")
    patterns: list[str] = []
    if not isinstance(events, list) or not events:
        errors["events"] = ["The events field must be a non-empty list of strings."]
    elif len(events) > settings.webhook_patterns_max:
        errors["events"] = [
            f"At most {settings.webhook_patterns_max} event types or patterns."
        ]
    else:
        for item in events:
            problem = (
                pattern_problem(item)
                if isinstance(item, str)
                else "Each event type or pattern must be a string."
            )
            if problem is not None:
                errors.setdefault("events", []).append(problem)
            elif item not in patterns:
                patterns.append(str(item))
    if errors:
        raise ValidationFailed(errors)
    assert isinstance(url, str)
    return WebhookInput(url=url, events=patterns)
