"""The relay's subscriber messages, written in batches (shared/bus/batch_publish.py),
carry exactly the AMQP properties aio-pika builds for broker.message: the contract in
the AsyncAPI document does not depend on how they are written."""

from __future__ import annotations

from pamqp.header import ContentHeader

from shared.bus import broker
from tests.support.stored_events import client_deleted


def test_a_batched_message_has_the_properties_of_an_aio_pika_message() -> None:
    """Given an event, the properties of broker.outgoing marshal to the very bytes of
    broker.message's (content type, delivery mode, ids, type, timestamp, priority,
    every header), and the body and routing key are the same."""
    event = client_deleted(business_id=42, client_id=7, position=99, version=3)
    body = broker.envelope_body(event)
    batched = broker.outgoing(event, body)
    single = broker.message(event)
    assert batched.body == single.body == body
    assert batched.routing_key == "42.client.deleted"

    def marshalled(properties: object) -> bytes:
        header = ContentHeader(properties=properties, body_size=len(body))  # type: ignore[arg-type]
        return header.marshal()

    assert marshalled(batched.properties) == marshalled(single.properties)
