"""The keyed hash chain: each event's hash covers its content and its stream's previous
hash, keyed with a secret (HMAC-SHA256) the database never holds.

An event hashed since key ids exist also has its key's id in the hashed content
(shared/keyring.py). Covering the id does not make a forgery harder by itself: anyone
holding a key can compute a hash over any id. What it buys is that the id and the hash
are one statement, so the audit can hold each key to what it may vouch for (a known
key never for a labelled event, shared/keyring.weakness; a stream never falls back
from labelled to unlabelled rows; services/audit/chains.py) and a relabelled row is a
difference at that row, not a row that verifies under whichever key matches. Rows
from before key ids (key id NULL) keep their content exactly as it was hashed, without
the field, so they verify unchanged."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

import msgspec

GENESIS = "0" * 64
_canonical = msgspec.json.Encoder(order="sorted")


def event_hash(key: bytes, previous: str, content: Mapping[str, object]) -> str:
    """HMAC of the previous hash and the event's canonical JSON (sorted keys)."""
    body = _canonical.encode(content)
    return hmac.new(key, previous.encode() + body, hashlib.sha256).hexdigest()


def hashed_content(
    *,
    event_id: str,
    event_type: str,
    business_id: int,
    stream_id: str,
    version: int,
    schema_version: int,
    recorded_at: str,
    metadata: object,
    payload: object,
    key_id: str | None,
) -> dict[str, object]:
    """Exactly the fields the hash covers, as stored (payload and metadata as JSON);
    `key_id` only when the event has one (legacy rows were hashed without it)."""
    content: dict[str, object] = {
        "event_id": event_id,
        "type": event_type,
        "business_id": business_id,
        "stream_id": stream_id,
        "version": version,
        "schema_version": schema_version,
        "recorded_at": recorded_at,
        "metadata": metadata,
        "payload": payload,
    }
    if key_id is not None:
        content["key_id"] = key_id
    return content
