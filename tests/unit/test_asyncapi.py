"""The AsyncAPI document is generated from the msgspec schemas and cannot drift."""

from __future__ import annotations

import json
import typing

from shared import events as e
from shared.bus import asyncapi, broker
from tests.support.stored_events import client_deleted


def test_the_committed_document_equals_a_fresh_generation() -> None:
    """shared/asyncapi.json is exactly what `make asyncapi` writes now: a change to
    an event, the envelope or the headers that was not regenerated fails here."""
    assert asyncapi.COMMITTED_PATH.read_bytes() == asyncapi.rendered(), (
        "shared/asyncapi.json is stale: run `make asyncapi`"
    )


def test_every_event_type_of_the_union_is_a_message_with_its_payload_schema() -> None:
    """Each LedgerEvent member appears as a message named by its wire tag, routed
    by `<business_id>.<event type>`, whose payload refers to its own struct's schema,
    and the schema's properties are exactly the struct's fields plus the tag."""
    document = json.loads(asyncapi.rendered())
    structs = typing.get_args(e.LedgerEvent)
    tags = [struct.__struct_config__.tag for struct in structs]
    messages = document["components"]["messages"]
    assert list(messages) == tags
    channel = document["channels"]["events"]
    assert channel["address"] == "{business_id}.{event_type}"
    assert channel["parameters"]["event_type"]["enum"] == tags
    assert channel["bindings"]["amqp"]["exchange"]["name"] == "ledger.events"
    assert channel["bindings"]["amqp"]["exchange"]["type"] == "topic"
    for struct, tag in zip(structs, tags, strict=True):
        specific = messages[tag]["payload"]["allOf"][1]["properties"]
        assert specific["type"] == {"enum": [tag]}
        assert specific["schema_version"] == {"enum": [1]}
        reference = specific["payload"]["$ref"]
        assert reference == f"#/components/schemas/{struct.__name__}"
        schema = document["components"]["schemas"][struct.__name__]
        assert set(schema["properties"]) == {"type", *struct.__struct_fields__}


def test_the_documented_headers_and_envelope_are_what_the_relay_sends() -> None:
    """A message built by broker.message carries exactly the headers the document
    lists, and its body has exactly the envelope schema's properties."""
    document = json.loads(asyncapi.rendered())
    schemas = document["components"]["schemas"]
    event = client_deleted(business_id=1, client_id=1, position=5)
    sent = broker.message(event)
    assert set(sent.headers) == set(schemas["MessageHeaders"]["properties"])
    assert set(schemas["MessageHeaders"]["required"]) == set(sent.headers)
    assert set(json.loads(sent.body)) == set(schemas["Envelope"]["properties"])
    assert set(json.loads(sent.body)["metadata"]) == set(
        schemas["Metadata"]["properties"]
    )
