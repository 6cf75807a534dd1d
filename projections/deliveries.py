"""What a projector's queue delivers: frames (a relay batch's events of one
partition), or what an earlier version left in a queue (one event, or a watermark);
and how far each partition's checkpoint may move once a batch of them is applied."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import msgspec
from aio_pika.abc import AbstractIncomingMessage

from projections.checkpoints import PartitionProgress
from shared.bus import broker
from shared.bus.partitions import partition_of_slot
from shared.events import Envelope

log = logging.getLogger(__name__)


class Delivery(msgspec.Struct, frozen=True):
    """A message and the events it carries (a frame's, one, or none)."""

    message: AbstractIncomingMessage
    events: list[Envelope]


async def decoded(message: AbstractIncomingMessage) -> Delivery:
    """A message's events: a frame's, a single event's (an earlier version's),
    none for a watermark; a single message that is neither is rejected (logged).
    A frame that does not decode (an event type from a newer writer, say) raises:
    it holds many businesses' events and its position would move the checkpoint
    past them all, so the projector stops, loudly, rather than drop them."""
    if message.type == broker.FRAME_TYPE:
        return Delivery(message, broker.frame_decoder.decode(message.body))
    try:
        if message.type == broker.WATERMARK_TYPE:
            return Delivery(message, [])
        return Delivery(message, [broker.envelope_decoder.decode(message.body)])
    except msgspec.DecodeError:
        log.error("rejecting a message that is no event: %s", message.message_id)
        await message.reject(requeue=False)
        return Delivery(message, [])


def progress_of(
    messages: Sequence[AbstractIncomingMessage], partitions: int
) -> PartitionProgress:
    """Per partition, the highest position the messages delivered (frames carry it
    in their headers, as an earlier version's events and watermarks did): the
    checkpoints move with these, never with the events' own positions, as a frame
    may carry events from past its position (services/outbox_relay/frames.py)."""
    positions: dict[int, int] = {}
    for message in messages:
        headers = message.headers or {}
        slot, position = headers.get("business_slot"), headers.get("position")
        if isinstance(slot, int) and isinstance(position, int):
            partition = partition_of_slot(slot, partitions)
            positions[partition] = max(positions.get(partition, 0), position)
    return PartitionProgress(partitions=partitions, positions=positions)
