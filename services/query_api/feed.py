"""The event feed, for subscribers that start late or lost messages (beside hop 4).

`GET /api/v3/events?after=POSITION&limit=N` answers `{"data": [envelope, ...],
"next_after": POSITION}`: the caller's business's events in the order the relay
publishes them, each envelope byte for byte the body of its RabbitMQ message
(`broker.envelope_body`). `limit` defaults to 100 and is capped at 1,000.

Order and cursor: position. Positions are drawn in commit order (migration 0011), so
a row that commits later always has a higher position than every row visible now, and
`position > after` never passes one, whatever else runs on the server. `after` must be
0 or the position of one of the caller's own events; `next_after` is the last
event's. A position from a RabbitMQ message works as `after` too: the relay publishes
in the same order.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg
import msgspec
from aiohttp import web

from services.http.edge import business_of, json_response, whole_number
from services.http.replica_reads import ReplicaBehind, on_replica
from shared import events as e
from shared.bus import asyncapi, broker
from shared.errors import ValidationFailed
from shared.store.event_rows import SELECT_EVENTS, envelope_from_row

routes = web.RouteTableDef()
LIMIT_DEFAULT = 100
LIMIT_MAX = 1000


class FeedQuery(msgspec.Struct, frozen=True):
    after: int
    limit: int


class EventsBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A list of envelopes as their messages' bytes; the feed adds its cursor."""

    data: list[msgspec.Raw]
    next_after: int | None = None


def feed_query(query: Mapping[str, str]) -> FeedQuery:
    """`after` (default 0) and `limit` (default 100, at most 1,000: larger is capped);
    anything not a whole number, a negative one or a zero limit is a 422."""
    errors: dict[str, list[str]] = {}
    values: dict[str, int] = {}
    for name, default in (("after", 0), ("limit", LIMIT_DEFAULT)):
        text = query.get(name, "").strip()
        number = default if text == "" else whole_number(text)
        if number is None:
            errors[name] = [f"The {name} must be a whole number."]
        else:
            values[name] = number
    if "limit" in values and values["limit"] < 1:
        errors["limit"] = ["The limit must be at least 1."]
    if errors:
        raise ValidationFailed(errors)
    return FeedQuery(after=values["after"], limit=min(values["limit"], LIMIT_MAX))


# The event `after` names: it must be one of the caller's business's events.
_ANCHOR = "SELECT true FROM events WHERE business_id = $1 AND position = $2"
_PAGE = (
    SELECT_EVENTS
    + "WHERE business_id = $1 AND position > $2 ORDER BY position LIMIT $3"
)


async def page(
    pool: asyncpg.Pool, business_id: int, query: FeedQuery, replica: bool = False
) -> list[e.Envelope]:
    """A page after `query.after`. On a replica (`replica`), an `after` it does not
    hold yet leaves the page to the primary (ReplicaBehind): once it holds `after`,
    it holds every event before it too (positions are drawn in commit order, and a
    standby replays commits in that order), so the page skips nothing."""
    async with pool.acquire() as conn:
        if query.after and not await conn.fetchval(_ANCHOR, business_id, query.after):
            if replica:
                raise ReplicaBehind()
            raise ValidationFailed(
                {
                    "after": [
                        "The after must be 0 or the position of one of your events."
                    ]
                }
            )
        rows = await conn.fetch(_PAGE, business_id, query.after, query.limit)
    return [envelope_from_row(row) for row in rows]


def events_body(events: list[e.Envelope], next_after: int | None = None) -> EventsBody:
    return EventsBody(
        data=[msgspec.Raw(broker.envelope_body(event)) for event in events],
        next_after=next_after,
    )


@routes.get("/api/v3/events")
async def events_feed(request: web.Request) -> web.Response:
    business = business_of(request)
    query = feed_query(request.query)
    events = await on_replica(
        request,
        lambda target: page(
            target.pool, business.business_id, query, target.replica is not None
        ),
    )
    next_after = events[-1].position if events else query.after
    return json_response(events_body(events, next_after))


# Public (services/http/edge.py lets this path through without a key).
@routes.get("/api/v3/asyncapi.json")
async def asyncapi_document(request: web.Request) -> web.Response:
    return web.Response(body=asyncapi.rendered(), content_type="application/json")
