"""The ledger API's refusals, as the client raises them.

The service answers every refusal in the Laravel shape: 422 `{"message", "errors":
{field: [...]}}`, anything else `{"message"}`. Each status becomes one exception class
here, all under LedgerApiError, so a caller can catch exactly what it can handle.
"""

from __future__ import annotations

import msgspec

# The service's words for a second request with an Idempotency-Key whose first request
# is still running: the one 409 that is not a business conflict, and safe to retry.
IN_PROGRESS_MESSAGE = "A request with this Idempotency-Key is in progress"


class LedgerApiError(Exception):
    """A request the ledger API refused, or could not be sent at all (status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class BadRequest(LedgerApiError):
    """400: the body is not JSON, or not a JSON object."""


class Unauthenticated(LedgerApiError):
    """401: no API key, or one the service does not know (or revoked)."""


class NotFound(LedgerApiError):
    """404: no such resource for this business (another business's ids alike)."""


class Conflict(LedgerApiError):
    """409: a business conflict (duplicate category name, balance not zero, already
    reversed), or a duplicate import (`import_id` names the first one)."""

    def __init__(self, status: int, message: str, import_id: str | None) -> None:
        super().__init__(status, message)
        self.import_id = import_id


class IdempotencyInProgress(Conflict):
    """409: the first request with this Idempotency-Key is still running; the client
    retries it (same key) before raising this."""


class PreconditionFailed(LedgerApiError):
    """412: the client changed since the version given in If-Match."""


class PayloadTooLarge(LedgerApiError):
    """413: the body is over 1 MiB (JSON) or 20 MiB (an import file)."""


class UnsupportedMediaType(LedgerApiError):
    """415: a body that is not JSON, or an import file that is not an xlsx."""


class ValidationError(LedgerApiError):
    """422: `errors` maps each invalid field to its messages (every one at once)."""

    def __init__(self, status: int, message: str, errors: dict[str, list[str]]) -> None:
        super().__init__(status, message)
        self.errors = errors


class Unavailable(LedgerApiError):
    """503: PostgreSQL unavailable, or `min_position` not reached in time; retry after
    `retry_after_s` seconds (the client already retried before raising this)."""

    def __init__(self, status: int, message: str, retry_after_s: float) -> None:
        super().__init__(status, message)
        self.retry_after_s = retry_after_s


class TooManyRequests(LedgerApiError):
    """429: a fair-use limit of the service (requests per key, failed
    authentications per address, expensive work per business, exports per bid);
    the client waited `retry_after_s` and retried, within its RetryPolicy, before
    raising this."""

    def __init__(self, status: int, message: str, retry_after_s: float) -> None:
        super().__init__(status, message)
        self.retry_after_s = retry_after_s


class ServerError(LedgerApiError):
    """5xx other than 503, or any status the client does not expect."""


class Unreachable(LedgerApiError):
    """The request could not be completed: connection refused or lost, or timed out
    (status 0). The original exception is the `__cause__`."""


class ErrorBody(msgspec.Struct, kw_only=True, frozen=True):
    message: str = ""
    errors: dict[str, list[str]] | None = None
    import_id: str | None = None


_error_decoder = msgspec.json.Decoder(ErrorBody)
_BY_STATUS: dict[int, type[LedgerApiError]] = {
    400: BadRequest,
    401: Unauthenticated,
    404: NotFound,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


def retry_after_s(header: str | None) -> float:
    """Retry-After in seconds (the service sends whole seconds); 1 when absent or an
    HTTP date, which this service never sends."""
    if header is None:
        return 1.0
    try:
        return max(0.0, float(header.strip()))
    except ValueError:
        return 1.0


def error_for(status: int, raw: bytes, retry_after: str | None) -> LedgerApiError:
    """The exception for a refused request, from its status and Laravel-shaped body."""
    try:
        body = _error_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        body = ErrorBody(message=raw.decode("utf-8", "replace")[:500])
    if status == 422:
        return ValidationError(status, body.message, body.errors or {})
    if status == 409 and body.message == IN_PROGRESS_MESSAGE:
        return IdempotencyInProgress(status, body.message, None)
    if status == 409:
        return Conflict(status, body.message, body.import_id)
    if status == 503:
        return Unavailable(status, body.message, retry_after_s(retry_after))
    if status == 429:
        return TooManyRequests(status, body.message, retry_after_s(retry_after))
    return _BY_STATUS.get(status, ServerError)(status, body.message)
