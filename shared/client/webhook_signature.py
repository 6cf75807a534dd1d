"""Webhook signatures: how the ledger signs a delivery and how a receiver checks it.

Every delivery carries `X-Ledger-Signature: t=<unix seconds>,v1=<hex>`, where the hex
is HMAC-SHA256 of `<t>.<body>` (the request body's exact bytes) under the endpoint's
secret (shown once, when the endpoint is created or its secret rotated). A receiver
calls verify_signature with the raw body before parsing it: a body that was changed,
a secret that is not the endpoint's, or a `t` further than `tolerance_s` from its
clock (a replayed old delivery) fails. Receivers dedupe by `X-Ledger-Event-Id`.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Ledger-Signature"
EVENT_ID_HEADER = "X-Ledger-Event-Id"
TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Ledger-Signature value of a delivery of `body` signed at `timestamp`."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    now: float,
    tolerance_s: float = TOLERANCE_S,
) -> bool:
    """Whether `header` (X-Ledger-Signature) signs `body` under `secret`, with its
    `t` within `tolerance_s` seconds of `now` (unix seconds). Several `v1=` entries
    are allowed (any one matching is enough); anything malformed is False."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1" and value.isascii():
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, value) for value in candidates)
