"""The hash chain's keys: which key is fit to sign, each key's id, and the keyring the
audit verifies with (the current key and the previous ones, rotation's memory).

A key's id is derived from the key itself (an HMAC of a fixed label under the key,
cut to 16 hex digits), so no second setting can drift from the key it names, and the
id says nothing about the key. Each event records the id of the key that hashed it
(the `key_id` column); rows written before key ids existed have none (legacy).
"""

from __future__ import annotations

import functools
import hashlib
import hmac

import msgspec

# The key the source once shipped as its default. Anyone can read it, so a chain
# hashed with it proves nothing: no process starts with it as its key.
DEVELOPMENT_KEY = "dev-only-insecure-hmac-key"
# The placeholders deploy files have carried (`change-me`, `change-me-local-hmac-key`).
PLACEHOLDER_PREFIX = "change-me"
# HMAC-SHA256 keys shorter than the hash's own 32 bytes weaken it; a key is text
# (an environment variable or a file), so its UTF-8 bytes are counted.
KEY_BYTES_MIN = 32
_KEY_ID_LABEL = b"ledger hash-chain key id"


def weakness(key: str) -> str | None:
    """Why `key` may not sign events, or None when it may."""
    if key == DEVELOPMENT_KEY:
        return "is the built-in development key, which is public"
    if key.strip().lower().startswith(PLACEHOLDER_PREFIX):
        return "is a placeholder from the deploy files"
    if len(key.encode()) < KEY_BYTES_MIN:
        return f"is shorter than {KEY_BYTES_MIN} bytes"
    return None


@functools.lru_cache(maxsize=64)
def key_id_of(secret: bytes) -> str:
    """The key's id: stable, short, and no help in guessing the key."""
    return hmac.new(secret, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def previous_keys(listed: str) -> tuple[str, ...]:
    """LEDGER_HMAC_PREVIOUS_KEYS: keys separated by commas (spaces around them and
    empty entries ignored), so a key may not itself hold a comma."""
    return tuple(key.strip() for key in listed.split(",") if key.strip())


class Keyring(msgspec.Struct, frozen=True):
    """The current key (signs every new event) and the previous keys (verify only);
    rows without a key id are legacy only up to `legacy_position_max` (0: no bound)."""

    current: bytes
    previous: tuple[bytes, ...] = ()
    legacy_position_max: int = 0

    @property
    def current_id(self) -> str:
        return key_id_of(self.current)

    def secret(self, key_id: str) -> bytes | None:
        """The key with this id, among the current and previous keys."""
        return next((key for key in self.keys() if key_id_of(key) == key_id), None)

    def keys(self) -> tuple[bytes, ...]:
        """Current first, then the previous keys as listed."""
        return (self.current, *self.previous)


def keyring(current: str, previous: str = "", legacy_position_max: int = 0) -> Keyring:
    """The keyring from the settings' key, LEDGER_HMAC_PREVIOUS_KEYS and
    LEDGER_HMAC_LEGACY_POSITION_MAX."""
    return Keyring(
        current=current.encode(),
        previous=tuple(key.encode() for key in previous_keys(previous)),
        legacy_position_max=legacy_position_max,
    )
