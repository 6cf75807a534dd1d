"""Frames: one per projection partition and relay batch, the JSON array of that
partition's events as their subscriber messages' bytes, in the batch's order."""

from __future__ import annotations

from shared import events as e
from shared.bus import broker
from shared.bus.partitions import business_slot
from tests.support.stored_events import client_deleted


def _event(business_id: int, position: int) -> e.Envelope:
    return client_deleted(
        business_id=business_id, client_id=position, position=position
    )


def test_a_batch_becomes_one_frame_per_partition_in_its_order() -> None:
    """Given businesses 1 (slot 55), 2 (slot 13) and 4 (slot 56) over three
    partitions (1, 1 and 2), each frame holds exactly its partition's events in the
    batch's order, every element byte for byte the event's subscriber message body;
    partition 0, with no event, gets the empty array; one partition gets the whole
    batch."""
    events = [_event(1, 10), _event(2, 11), _event(1, 12), _event(4, 13)]
    bodies = [broker.envelope_body(event) for event in events]
    assert [business_slot(n) for n in (1, 2, 4)] == [55, 13, 56]
    frames = broker.frame_bodies(events, bodies, 3)
    assert frames == [
        b"[]",
        b"[" + b",".join(bodies[:3]) + b"]",
        b"[" + bodies[3] + b"]",
    ]
    assert [broker.frame_decoder.decode(frame) for frame in frames] == [
        [],
        events[:3],
        events[3:],
    ]
    assert broker.frame_bodies(events, bodies, 1) == [b"[" + b",".join(bodies) + b"]"]
    assert broker.frame_bodies([], [], 2) == [b"[]", b"[]"]
