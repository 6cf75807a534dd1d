"""A stored event made up for tests of what is built from one (messages, frames): a
client.deleted with a valid hash, at a position of the caller's choosing."""

from __future__ import annotations

import datetime as dt

from shared import events as e
from shared.store.new_events import new_event

RECORDED_AT = dt.datetime(2024, 11, 4, 16, 13, 37, 123456, tzinfo=dt.UTC)


def client_deleted(
    *, business_id: int, client_id: int, position: int, version: int = 1
) -> e.Envelope:
    """Client `client_id`'s deletion stored at `position`, correlation `c<position>`."""
    return new_event(
        key=b"k",
        previous_hash="0" * 64,
        business_id=business_id,
        stream_id=e.client_stream(client_id),
        version=version,
        recorded_at=RECORDED_AT,
        metadata=e.Metadata(correlation_id=f"c{position}"),
        payload=e.ClientDeleted(client_id=client_id),
    ).stored(position=position)
