"""Hop 3's reading side: a stored event row as the envelope every reader gets.

SELECT_EVENTS is the columns a reader selects (its WHERE and ORDER BY added), each
sealed event with its client's wrapped key; envelope_from_row() decodes such a row,
upcasting an old payload and opening its sealed personal fields; and
stored_hashed_content() is what the audit hashes, the row exactly as stored.
"""

from __future__ import annotations

import asyncpg
import msgspec

from shared import events as e
from shared import personal_data
from shared.hash_chain import hashed_content
from shared.upcasting import UPCASTERS

# A sealed event's client key, wrapped (NULL once erased), looked up only for a
# sealed row: unsealed rows (most postings, a replay's whole history) cost nothing.
# `{events}` names the events row (an alias where the reader gives one).
WRAPPED = """CASE WHEN {events}.sealed IS NULL THEN NULL ELSE
       (SELECT ck.wrapped FROM client_keys ck
        WHERE ck.business_id = {events}.business_id
          AND ck.stream_id = {events}.stream_id) END"""
# The columns envelope_from_row decodes; readers add their WHERE and ORDER BY. A
# sealed event comes with its client's wrapped key (`wrapped`, NULL when the key is
# gone).
SELECT_EVENTS = f"""
SELECT event_id, type, business_id, stream_id, version, position, schema_version,
       recorded_at, metadata::text AS metadata, payload::text AS payload, hash,
       key_id, sealed, {WRAPPED.format(events="events")} AS wrapped
FROM events
"""
_metadata_decoder = msgspec.json.Decoder(e.Metadata)
_payload_decoder = msgspec.json.Decoder(e.LedgerEvent)
_object_decoder = msgspec.json.Decoder(dict[str, object])


def envelope_from_row(row: asyncpg.Record) -> e.Envelope:
    """Decode a stored event: the one path every reader takes (load_stream,
    read_after, the write side's stream states, the history route, the feed, and the
    audit's replay).

    A payload stored at an older schema version goes through its upcasters first
    (shared/upcasting.py), so the envelope holds the current payload and the current
    `schema_version`; its `hash` is still the stored one, which covers the stored
    content (see stored_hashed_content). Its sealed personal fields are opened with
    its client's key (shared/personal_data.py); with the key gone (the client was
    erased) they read as null.
    """
    event_type, schema_version = row["type"], row["schema_version"]
    if schema_version == UPCASTERS.current_version(event_type):  # one lookup
        payload = _payload_decoder.decode(row["payload"])
    else:  # an older version, upcast; a newer one fails upcast()'s assertion
        schema_version, upcast = UPCASTERS.upcast(
            event_type, schema_version, _object_decoder.decode(row["payload"])
        )
        payload = msgspec.convert(upcast, e.LedgerEvent)
    sealed, wrapped = row["sealed"], row["wrapped"]
    if sealed is not None and wrapped is None:  # its client was erased
        payload = personal_data.erased(payload)
    elif sealed is not None:
        key = personal_data.unwrap(wrapped, row["business_id"], row["stream_id"])
        payload = personal_data.unseal(key, row["event_id"], payload, sealed)
    return e.Envelope(
        event_id=row["event_id"],
        type=event_type,
        business_id=row["business_id"],
        stream_id=row["stream_id"],
        version=row["version"],
        position=row["position"],
        schema_version=schema_version,
        recorded_at=row["recorded_at"],
        metadata=_metadata_decoder.decode(row["metadata"]),
        payload=payload,
        hash=row["hash"],
    )


def stored_hashed_content(row: asyncpg.Record) -> dict[str, object]:
    """What a stored event's hash covers, from the row exactly as stored (its own
    schema version and payload, never the upcast ones): the audit chains these."""
    return hashed_content(
        event_id=str(row["event_id"]),
        event_type=row["type"],
        business_id=row["business_id"],
        stream_id=row["stream_id"],
        version=row["version"],
        schema_version=row["schema_version"],
        recorded_at=row["recorded_at"].isoformat(),
        metadata=_object_decoder.decode(row["metadata"]),
        payload=_object_decoder.decode(row["payload"]),
        key_id=row["key_id"],
        sealed=row["sealed"],
    )
