"""The keyed hash chain: each event's hash covers its content and its stream's previous
hash, keyed with a secret (HMAC-SHA256) the database never holds."""

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
) -> dict[str, object]:
    """Exactly the fields the hash covers, as stored (payload and metadata as JSON)."""
    return {
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
