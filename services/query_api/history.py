"""A client's full event history, for auditors: `GET /api/v3/clients/{id}/events`.

Read from the event store itself (not a read model), oldest first: every event of the
client's stream as the envelope its RabbitMQ message carries (type, position, stream
version, schema version, recorded time, metadata with the principal, payload, hash).

A deleted client still answers, with its whole history ending in `client.deleted`
(other client routes answer 404 for it: an auditor wants the history precisely
then). Another business's client, an id that never existed, or a non-numeric id
answer 404 alike.
"""

from __future__ import annotations

from aiohttp import web

from services.http.edge import business_of, json_response, path_id
from services.http.replica_reads import on_replica
from services.query_api.feed import events_body
from shared import events as e
from shared.errors import NotFound
from shared.store.event_store import load_stream

routes = web.RouteTableDef()


@routes.get(r"/api/v3/clients/{id:[0-9]+}/events")
async def client_events(request: web.Request) -> web.Response:
    business = business_of(request)
    client_id = path_id(request)
    stream_id = e.client_stream(client_id)
    events = await on_replica(
        request, lambda target: load_stream(target.pool, stream_id)
    )
    if not events or events[0].business_id != business.business_id:
        raise NotFound(f"Client {client_id} not found")
    return json_response(events_body(events))
