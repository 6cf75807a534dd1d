"""Hop 2 to hop 3: decided events, hash-chained, on their way to append.

Every writer (the appender's commands, an import's rows, the chain-head checkpoints)
turns the payloads it decided into NewEvents with chain(): one place where an event
gets its id, its current schema version, its key's id and its hash, chained from the
head of its stream. Nothing here does I/O; append() (event_store.py) stores them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import msgspec

from shared import events as e
from shared import personal_data, uuids
from shared.hash_chain import GENESIS, event_hash, hashed_content
from shared.keyring import key_id_of
from shared.upcasting import UPCASTERS


class NewEvent(msgspec.Struct, kw_only=True, frozen=True):
    """An event decided but not yet stored (no position yet)."""

    event_id: uuid.UUID
    business_id: int
    stream_id: str
    version: int
    schema_version: int
    recorded_at: dt.datetime
    metadata: e.Metadata
    payload: e.LedgerEvent
    hash: str
    key_id: str  # the id of the key that hashed it (shared/keyring.key_id_of)
    # As stored: the payload with its personal fields blank, and those fields sealed
    # (shared/personal_data.py); `payload` itself and None when nothing is sealed.
    stored_payload: e.LedgerEvent
    sealed: bytes | None = None
    # A new stream's client key, wrapped, stored with its first event (client_keys).
    new_key: bytes | None = None

    def stored(self, position: int) -> e.Envelope:
        return e.Envelope(
            event_id=self.event_id,
            type=e.event_type(self.payload),
            business_id=self.business_id,
            stream_id=self.stream_id,
            version=self.version,
            position=position,
            schema_version=self.schema_version,
            recorded_at=self.recorded_at,
            metadata=self.metadata,
            payload=self.payload,
            hash=self.hash,
        )


class PersonalKey(msgspec.Struct, frozen=True):
    """The client key a stream's personal fields are sealed with, and, for a stream
    its writer creates, the same key wrapped, to store with its first event."""

    key: bytes
    wrapped: bytes | None = None


def new_personal_key(
    master: personal_data.MasterKey, business_id: int, stream_id: str
) -> PersonalKey:
    """A new client's key, and that key wrapped by the master key."""
    key = personal_data.new_client_key()
    return PersonalKey(key, personal_data.wrap(master, business_id, stream_id, key))


class StreamHead(msgspec.Struct, frozen=True):
    """Where a stream's chain goes on from: its last version and that event's hash
    (a new stream's head is version 0 and the genesis hash)."""

    version: int = 0
    hash: str = GENESIS


def new_event(
    *,
    key: bytes,
    previous_hash: str,
    business_id: int,
    stream_id: str,
    version: int,
    recorded_at: dt.datetime,
    metadata: e.Metadata,
    payload: e.LedgerEvent,
) -> NewEvent:
    """Build one event with its chained hash (chain() for a stream's next ones)."""
    head = StreamHead(version - 1, previous_hash)
    [event] = chain(key, business_id, stream_id, head, [payload], recorded_at, metadata)
    return event


def chain(
    key: bytes,
    business_id: int,
    stream_id: str,
    head: StreamHead,
    payloads: Sequence[e.LedgerEvent],
    recorded_at: dt.datetime,
    metadata: e.Metadata,
    personal: PersonalKey | None = None,
) -> list[NewEvent]:
    """The payloads as the stream's next events, each at its type's current schema
    version, each hash chained to the one before it, the first to the stream's head.
    The hash covers the id of `key`, recorded beside it. With a `personal` key, each
    event's personal fields are sealed under it and the hash covers them sealed; its
    wrapped form, if any, goes with the first event.

    Payload and metadata enter the hashed content as structs: the canonical encoder
    sorts a struct's fields as it sorts the keys of the stored JSON the audit hashes,
    to the same bytes (tests/unit/test_chain_hashes.py), without a dict per event."""
    key_id, hashed_at = key_id_of(key), recorded_at.isoformat()
    previous = head.hash
    chained: list[NewEvent] = []
    for offset, payload in enumerate(payloads, start=1):
        event_id, event_type = uuids.uuid4(), e.event_type(payload)
        schema_version = UPCASTERS.current_version(event_type)
        stored, sealed = _sealed(personal, event_id, payload)
        content = hashed_content(
            event_id=str(event_id),
            event_type=event_type,
            business_id=business_id,
            stream_id=stream_id,
            version=head.version + offset,
            schema_version=schema_version,
            recorded_at=hashed_at,
            metadata=metadata,
            payload=stored,
            key_id=key_id,
            sealed=sealed,
        )
        previous = event_hash(key, previous, content)
        chained.append(
            NewEvent(
                event_id=event_id,
                business_id=business_id,
                stream_id=stream_id,
                version=head.version + offset,
                schema_version=schema_version,
                recorded_at=recorded_at,
                metadata=metadata,
                payload=payload,
                hash=previous,
                key_id=key_id,
                stored_payload=stored,
                sealed=sealed,
                new_key=personal.wrapped if personal and offset == 1 else None,
            )
        )
    return chained


def _sealed(
    personal: PersonalKey | None, event_id: uuid.UUID, payload: e.LedgerEvent
) -> tuple[e.LedgerEvent, bytes | None]:
    """The payload as stored and its sealed fields (shared/personal_data.seal)."""
    if personal is None:
        return payload, None
    return personal_data.seal(personal.key, event_id, payload)


def assert_contiguous(events: Sequence[NewEvent]) -> None:
    """Each stream's events follow one another (append asserts it before it writes,
    evolve and load_stream again after reading)."""
    last: dict[str, int] = {}
    for event in events:
        if event.stream_id in last:
            assert event.version == last[event.stream_id] + 1, "versions are contiguous"
        last[event.stream_id] = event.version


# The columns a COPY writes, in copy_rows()' order.
COPY_COLUMNS = (
    "event_id",
    "business_id",
    "stream_id",
    "version",
    "type",
    "schema_version",
    "payload",
    "metadata",
    "recorded_at",
    "hash",
    "key_id",
    "sealed",
)


class CopyRows(msgspec.Struct, frozen=True):
    """Events encoded for COPY, the bulk mode of append(), and the last of them."""

    rows: list[tuple[object, ...]]
    last: NewEvent
    keys: list[tuple[int, str, bytes]]  # client_keys rows: the new streams' keys


def copy_rows(events: Sequence[NewEvent]) -> CopyRows:
    """Encode the events for append()'s bulk mode before the transaction begins, so
    that it only streams them: the COPY holds the commit-order lock (migration 0011)
    until its COMMIT, and every other writer waits for it meanwhile. Pure and
    slow for 100,000 events: callers run it in a worker thread. Payload and metadata
    go as msgspec.Raw, which the connections' binary jsonb codec passes as it is
    (shared/store/postgres.py)."""
    assert events, "nothing to copy"
    assert_contiguous(events)
    encode = msgspec.json.encode
    # A writer's events share one Metadata: each distinct one is encoded once.
    metadata = {id(event.metadata): event.metadata for event in events}
    metadata_json = {key: msgspec.Raw(encode(value)) for key, value in metadata.items()}
    rows: list[tuple[object, ...]] = [
        (
            event.event_id,
            event.business_id,
            event.stream_id,
            event.version,
            e.event_type(event.payload),
            event.schema_version,
            msgspec.Raw(encode(event.stored_payload)),
            metadata_json[id(event.metadata)],
            event.recorded_at,
            event.hash,
            event.key_id,
            event.sealed,
        )
        for event in events
    ]
    return CopyRows(rows, events[-1], new_keys(events))


def new_keys(events: Sequence[NewEvent]) -> list[tuple[int, str, bytes]]:
    """The client_keys rows the events bring: (business id, stream id, wrapped)."""
    return [
        (event.business_id, event.stream_id, event.new_key)
        for event in events
        if event.new_key is not None
    ]
