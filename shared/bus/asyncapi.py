"""The AsyncAPI 3 document for event subscribers, generated from the msgspec schemas.

Everything in it comes from code: the event types and their payloads from the
`LedgerEvent` union (`msgspec.json.schema_components`), the envelope from `Envelope`,
the headers from `broker.MessageHeaders`, each type's schema version from the upcaster
registry, the exchange's default name from `Settings`. A new event type appears here
by being added to the union. The committed copy (`shared/asyncapi.json`) is checked
against a fresh generation by a test; regenerate it with `make asyncapi`
(`python -m shared.bus.asyncapi > shared/asyncapi.json`).
"""

from __future__ import annotations

import functools
import typing
from pathlib import Path

import msgspec

from shared import events as e
from shared.bus.broker import MessageHeaders
from shared.config import Settings
from shared.schema_text import clean_descriptions, published
from shared.upcasting import UPCASTERS

# Published beside openapi.json, at the top of the package.
COMMITTED_PATH = Path(__file__).parent.parent / "asyncapi.json"
_SCHEMAS = "#/components/schemas/{name}"
_AMQP_BINDING_VERSION = "0.3.0"
_DESCRIPTION = """\
Every committed event is published at least once, in stream order, to a durable \
topic exchange as a persistent JSON message whose body is the event's envelope. \
Routing key `<business_id>.<event type>`; `message_id` is the event id: subscribers \
bind their own queue (for example `17.#` or `*.transaction.posted`) and dedupe by \
`message_id`. A subscriber that starts late, or lost messages, binds its queue first, \
then reads `GET /api/v3/events?after=POSITION` (the same envelopes) until it is \
empty, then consumes its queue, deduplicating by event id: it sees every event \
exactly once. `schema_version` is the payload's version as delivered (old events are \
upcast to the current version before publication). Personal data: a client's profile \
fields, a posting's `description` and `reference` and a reversal's `reason` are \
delivered in plain text and are `null` once the client is erased. A \
`client.erased` event means the data subject asked for their personal data to be \
deleted: every subscriber must then delete its own copies of that client's personal \
fields (from its stores, caches and logs) and keep only the figures."""


def event_types() -> list[tuple[str, type[e.Event]]]:
    """(wire name, payload struct) of every event type, in the union's order."""
    types: list[tuple[str, type[e.Event]]] = []
    for struct in typing.get_args(e.LedgerEvent):
        tag = struct.__struct_config__.tag
        assert isinstance(tag, str)
        types.append((tag, struct))
    return types


def _message(tag: str, struct: type[e.Event]) -> dict[str, object]:
    version = UPCASTERS.current_version(tag)
    envelope = {
        "allOf": [
            {"$ref": _SCHEMAS.format(name="Envelope")},
            {
                "type": "object",
                "properties": {
                    "type": {"enum": [tag]},
                    "schema_version": {"enum": [version]},
                    "payload": {"$ref": _SCHEMAS.format(name=struct.__name__)},
                },
            },
        ]
    }
    return {
        "name": tag,
        "title": tag,
        "summary": (struct.__doc__ or tag).splitlines()[0],
        "contentType": "application/json",
        "headers": {"$ref": _SCHEMAS.format(name="MessageHeaders")},
        "payload": envelope,
        "correlationId": {"location": "$message.payload#/metadata/correlation_id"},
        "bindings": {
            "amqp": {"messageType": tag, "bindingVersion": _AMQP_BINDING_VERSION}
        },
    }


def document() -> dict[str, object]:
    """The AsyncAPI 3.0 document (a JSON-ready dict)."""
    types = event_types()
    _, schemas = msgspec.json.schema_components(
        [e.Envelope, MessageHeaders], ref_template=_SCHEMAS
    )
    channel_messages: dict[str, object] = {
        tag: {"$ref": f"#/components/messages/{tag}"} for tag, _ in types
    }
    document = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Ledger events",
            "version": "1.0.0",
            "description": _DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "RabbitMQ (LEDGER_AMQP_URL)",
            }
        },
        "channels": {"events": _channel(channel_messages, [tag for tag, _ in types])},
        "operations": {
            "receiveEvents": {
                "action": "receive",
                "channel": {"$ref": "#/channels/events"},
                "summary": "Every committed event of every business",
                "messages": [
                    {"$ref": f"#/channels/events/messages/{tag}"} for tag, _ in types
                ],
            }
        },
        "components": {
            "schemas": schemas,
            "messages": {tag: _message(tag, struct) for tag, struct in types},
        },
    }
    cleaned = clean_descriptions(document)
    assert isinstance(cleaned, dict)
    return cleaned


def _channel(messages: dict[str, object], tags: list[str]) -> dict[str, object]:
    return {
        "address": "{business_id}.{event_type}",
        "title": "The events exchange",
        "description": "The routing key of each message: business id, event type.",
        "parameters": {
            "business_id": {"description": "The business the event belongs to."},
            "event_type": {"enum": tags, "description": "The event's type."},
        },
        "messages": messages,
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": Settings().exchange,
                    "type": "topic",
                    "durable": True,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": _AMQP_BINDING_VERSION,
            }
        },
    }


@functools.cache
def rendered() -> bytes:
    """The document as the committed file holds it (indented JSON, final newline).
    Built once per process: it depends on the code alone, and building it takes
    milliseconds of the event loop that each request to the public route would
    spend again."""
    return published(document())


if __name__ == "__main__":
    import sys

    sys.stdout.buffer.write(rendered())
