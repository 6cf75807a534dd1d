"""`ledger hmac-key create --file PATH`: a random hash-chain key, made once and kept.

`make run` and the compose file's one-shot `hmac-key` service call it, so the easy
paths get a key of their own instead of a shared, public one; the processes then read
it through LEDGER_HMAC_KEY_FILE. A file that exists is kept as it is: a new key over
an old one would leave every event hashed so far unverifiable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

# 48 random bytes, 64 characters of URL-safe base64: twice the 32-byte minimum
# (shared/keyring.KEY_BYTES_MIN), and no comma, so it can be listed among the
# previous keys after a rotation.
KEY_RANDOM_BYTES = 48


def create_key_file(path: Path) -> bool:
    """Write a new random key to `path` (owner-only), unless a file is already there;
    True when this call created it. O_EXCL makes two callers at once safe: one
    writes, the other finds the file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(secrets.token_urlsafe(KEY_RANDOM_BYTES) + "\n")
    return True
