"""The keyed hash chain: each event's hash covers its content and its stream's previous
hash, keyed with a secret (HMAC-SHA256) the database never holds.

An event hashed since key ids exist also has its key's id in the hashed content
(shared/keyring.py). Why cover it: an attacker with write access to the database may
relabel a row to another key and re-chain it with that key. Against a key the
attacker does not hold, nothing changes: no hash can be made under it, labelled or
not. Against a key the attacker knows (the public development key, listed among the
previous keys to verify an old store), coverage alone does not help either, since a
hash over any id can be made with a known key. What coverage buys is that id and hash
are one statement, so the audit can hold each key to what it may vouch for and find
a relabelled row at that row: a known key never vouches for a labelled row (no process
signs with one), a stream never goes back from labelled to unlabelled rows, and
unlabelled (legacy) rows end at LEDGER_HMAC_LEGACY_POSITION_MAX, which a known key in
the ring requires (services/audit/chains.py). So a known key lets an attacker forge
only what it could forge before: rows it hashed before key ids. Rows from before key
ids (key id NULL) keep their content exactly as it was hashed, without the field, so
they verify unchanged.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Mapping

import msgspec

GENESIS = "0" * 64
_canonical = msgspec.json.Encoder(order="sorted")


def event_hash(key: bytes, previous: str, content: Mapping[str, object]) -> str:
    """HMAC of the previous hash and the event's canonical JSON (sorted keys)."""
    mac = _keyed(key).copy()  # the key's pads are hashed once per key, not per event
    mac.update(previous.encode() + _canonical.encode(content))
    return mac.hexdigest()


@functools.lru_cache(maxsize=16)
def _keyed(key: bytes) -> hmac.HMAC:
    return hmac.new(key, digestmod=hashlib.sha256)


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
    sealed: bytes | None = None,
) -> dict[str, object]:
    """Exactly the fields the hash covers, as stored: payload and metadata as the
    stored JSON objects, or the structs they are encoded from (the canonical encoder
    writes both to the same bytes); `key_id` only when the event has one (legacy rows
    were hashed without it); `sealed`, its sealed personal fields in base64, only when
    it has some (shared/personal_data.py)."""
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
    if sealed is not None:  # sealed personal fields (shared/personal_data.py)
        content["sealed"] = base64.b64encode(sealed).decode()
    return content
