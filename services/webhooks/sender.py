"""One delivery attempt: POST the event's body, signed, and judge the answer.

Success is any 2xx. Everything else fails the attempt and is kept in the delivery
log: a 3xx (redirects are never followed: the Location could name any address), a
4xx or 5xx, a connection refused or reset, a host that cannot be looked up, an address
refused (services/webhooks/addresses.py), or no whole answer within
LEDGER_WEBHOOK_TIMEOUT_S. At most
LEDGER_WEBHOOK_RESPONSE_BYTES_MAX bytes of the answer's body are read; the rest is
never read (the connection is closed instead of reused).
"""

from __future__ import annotations

import time
import uuid

import aiohttp
import msgspec

from services.webhooks.addresses import (
    AddressRefused,
    PublicResolver,
    literal_problem,
)
from shared.client.webhook_signature import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    signature_header,
)
from shared.config import Settings

ERROR_LENGTH_MAX = 500
USER_AGENT = "ledger-webhooks/1"


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """What one attempt got: a status (None: no answer), an error, the body's head."""

    ok: bool
    status_code: int | None = None
    error: str | None = None
    response: str = ""


def client_session(settings: Settings) -> aiohttp.ClientSession:
    """The worker's HTTP client: public addresses only (unless the settings allow
    private ones), no proxy from the environment, no cookies kept."""
    resolver = None if settings.webhook_allow_private_addresses else PublicResolver()
    connector = aiohttp.TCPConnector(
        resolver=resolver, limit=settings.webhook_senders * 2, ttl_dns_cache=10
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": USER_AGENT},
    )


def delivery_headers(event_id: uuid.UUID, secret: str, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        EVENT_ID_HEADER: str(event_id),
        SIGNATURE_HEADER: signature_header(secret, int(time.time()), body),
    }


async def attempt(
    session: aiohttp.ClientSession,
    settings: Settings,
    url: str,
    headers: dict[str, str],
    body: bytes,
) -> Attempt:
    """POST `body` to `url` once (never raises for what the receiver does)."""
    if not settings.webhook_allow_private_addresses:
        problem = literal_problem(url)
        if problem is not None:
            return Attempt(ok=False, error=f"address refused: {problem}")
    try:
        async with session.post(
            url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=settings.webhook_timeout_s),
        ) as response:
            head = await _head(response, settings.webhook_response_bytes_max)
            status = response.status
    except TimeoutError:
        return Attempt(ok=False, error=f"timeout after {settings.webhook_timeout_s} s")
    except (aiohttp.ClientError, OSError, ValueError) as error:
        # ValueError: a host the IDNA codec refuses (UnicodeError), raised by yarl
        # or the resolver rather than as a ClientError.
        return Attempt(ok=False, error=_error_text(error))
    text = head.decode("utf-8", errors="replace")
    if 200 <= status < 300:
        return Attempt(ok=True, status_code=status, response=text)
    return Attempt(ok=False, status_code=status, error=f"HTTP {status}", response=text)


def _error_text(error: Exception) -> str:
    """What the delivery log says of a connection that failed: an address refused
    as such (the host only: services/webhooks/addresses.py), else the error."""
    cause = getattr(error, "os_error", error)  # aiohttp wraps the resolver's error
    if isinstance(cause, AddressRefused):
        return f"address refused: {cause}"[:ERROR_LENGTH_MAX]
    return f"{type(error).__name__}: {error}"[:ERROR_LENGTH_MAX]


async def _head(response: aiohttp.ClientResponse, bytes_max: int) -> bytes:
    """Up to `bytes_max` bytes of the body; the rest is left unread."""
    chunks: list[bytes] = []
    size = 0
    while size < bytes_max:
        chunk = await response.content.read(bytes_max - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
