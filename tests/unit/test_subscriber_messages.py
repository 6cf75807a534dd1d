"""The relay's subscriber messages, written in batches (shared/bus/batch_publish.py),
carry exactly the AMQP properties aio-pika builds for broker.message: the contract in
the AsyncAPI document does not depend on how they are written."""

from __future__ import annotations

import datetime as dt

from pamqp.header import ContentHeader

from shared import events as e
from shared.bus import broker
from shared.store.new_events import new_event


def test_a_batched_message_has_the_properties_of_an_aio_pika_message() -> None:
    """Given an event, the properties of broker.outgoing marshal to the very bytes of
    broker.message's (content type, delivery mode, ids, type, timestamp, priority,
    every header), and the body and routing key are the same."""
    event = new_event(
        key=b"k",
        previous_hash="0" * 64,
        business_id=42,
        stream_id="client-7",
        version=3,
        recorded_at=dt.datetime(2024, 11, 4, 16, 13, 37, 123456, tzinfo=dt.UTC),
        metadata=e.Metadata(correlation_id="corr-1"),
        payload=e.ClientDeleted(client_id=7),
    ).stored(position=99)
    body = broker.envelope_body(event)
    batched = broker.outgoing(event, body)
    single = broker.message(event)
    assert batched.body == single.body == body
    assert batched.routing_key == "42.client.deleted"

    def marshalled(properties: object) -> bytes:
        header = ContentHeader(properties=properties, body_size=len(body))  # type: ignore[arg-type]
        return header.marshal()

    assert marshalled(batched.properties) == marshalled(single.properties)
