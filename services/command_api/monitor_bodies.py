"""Hop 1 for balance monitors: POST /api/v3/monitors's body to a CreateMonitor.

The body is described by MonitorInput (the OpenAPI document takes its schema from
it) and read field by field like every command body (request_fields.read), so a 422
names every invalid field at once. How many monitors a business may have is a
setting (LEDGER_MONITORS_PER_BUSINESS_MAX), counted on the read model while the
business's creations take turns (room()).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Literal

import asyncpg
import msgspec

from services.command_api.request_fields import (
    AMOUNT_MAX,
    Body,
    Field,
    Identifier,
    Reads,
    Refused,
    read,
    signed_amount,
)
from shared import commands as c
from shared import events as e
from shared.errors import ValidationFailed


def _one_of(*allowed: str) -> Reads:
    def reads(value: object, field: Field) -> str:
        if value is msgspec.UNSET or value is None:
            raise Refused(f"The {field.label} field is required.")
        if value not in allowed:
            raise Refused(f"The {field.label} must be one of: {', '.join(allowed)}.")
        return str(value)

    return Reads(reads)


Scope = Annotated[Literal["client", "category", "business"], _one_of(*c.SCOPES)]
Figure = Annotated[Literal["balance", "deposit"], _one_of("balance", "deposit")]
Condition = Annotated[Literal[">=", "<="], _one_of(">=", "<=")]
Threshold = Annotated[
    Annotated[float, msgspec.Meta(ge=-AMOUNT_MAX, le=AMOUNT_MAX)] | str,
    Reads(signed_amount),
]


class MonitorInput(msgspec.Struct, kw_only=True):
    """A balance monitor. `scope` `client` takes `client_id`, `category` takes
    `category_id`, `business` neither. It fires for each client in the scope whose
    `figure` (`balance`: what the client owes; `deposit`: what it prepaid) crosses
    `condition amount` (`amount`: a JSON number or a string, at most two decimals,
    any sign), once per crossing."""

    scope: Scope
    client_id: Identifier = None
    category_id: Identifier = None
    figure: Figure
    condition: Condition
    threshold_minor: Threshold = msgspec.field(name="amount")


def create_monitor(body: Body, business_id: int, monitor_id: str) -> c.CreateMonitor:
    errors = _scope_errors(body)
    try:
        values = read(MonitorInput, body)
    except ValidationFailed as failed:
        raise ValidationFailed({**errors, **failed.errors}) from None
    if errors:
        raise ValidationFailed(errors)
    definition = e.MonitorCreated(monitor_id=monitor_id, **values)
    return c.CreateMonitor(business_id=business_id, definition=definition)


def _scope_errors(body: Body) -> dict[str, list[str]]:
    """`client_id` is required for scope client and refused for the others; so is
    `category_id` for scope category (an unknown scope is read()'s refusal)."""
    scope = body.get("scope")
    if scope not in c.SCOPES:
        return {}
    errors: dict[str, list[str]] = {}
    for field, owner in (("client_id", "client"), ("category_id", "category")):
        label = field.replace("_", " ")
        given = body.get(field) not in (None, "")
        if scope == owner and not given:
            errors[field] = [f"The {label} field is required."]
        elif scope != owner and given:
            errors[field] = [f"The {label} is only for scope {owner}."]
    return errors


# Monitor creations of one business take turns (a transaction's advisory lock on this
# key and the business's id, across API processes), so the count each one reads includes
# the previous one's monitor: that one has waited until the read models show it.
_ROOM_LOCK = 7_170_006 << 32


@contextlib.asynccontextmanager
async def room(
    pool: asyncpg.Pool, business_id: int, monitors_max: int
) -> AsyncIterator[None]:
    """Hold the business's turn to create a monitor; refuse (422) past the bound."""
    key = _ROOM_LOCK | (business_id & 0xFFFF_FFFF)
    async with pool.acquire() as conn, conn.transaction():
        # A transaction's lock: released by its end, however the request ends.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", key)
        count = await conn.fetchval(
            "SELECT count(*) FROM rm_monitors WHERE business_id = $1", business_id
        )
        if count >= monitors_max:
            raise ValidationFailed(
                {"monitors": [f"A business may have at most {monitors_max} monitors."]}
            )
        yield
