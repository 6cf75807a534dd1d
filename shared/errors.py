"""Refusals the service expects. One HTTP middleware maps them to status codes."""

from __future__ import annotations


class LedgerError(Exception):
    """A request the ledger refuses; `status` is the HTTP status it maps to, and
    `retry_after_s`, when set, the Retry-After header (whole seconds) it carries."""

    status = 400
    retry_after_s: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationFailed(LedgerError):
    """One or more fields are invalid: 422 with Laravel's `errors` per field."""

    status = 422

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("The given data was invalid.")
        self.errors = errors


class NotFound(LedgerError):
    status = 404


class Conflict(LedgerError):
    """A business conflict the caller must resolve (duplicate name, balance not 0)."""

    status = 409


class PreconditionFailed(LedgerError):
    status = 412


class NotYetVisible(LedgerError):
    """A query's X-Ledger-Min-Position was not reached in time: 503 with Retry-After."""

    status = 503
    retry_after_s = 1


class ServiceStopping(NotYetVisible):
    """The process is shutting down and takes no new command: 503 with Retry-After
    (another instance, or this one restarted, will take the retry)."""

    def __init__(self) -> None:
        super().__init__("The service is shutting down; retry")


class CommitUnconfirmed(NotYetVisible):
    """The connection failed at COMMIT and the store could not be asked whether the
    command was written: 503 with Retry-After. Retrying with the same Idempotency-Key
    is safe: it replays the first result if the COMMIT was applied, else writes once."""

    def __init__(self) -> None:
        super().__init__(
            "The outcome of the request is unknown;"
            " retry it with the same Idempotency-Key"
        )


class CommitFailed(NotYetVisible):
    """COMMIT raised an error that is not a connection error (asyncpg reports some
    cuts as its own protocol errors) and the store says nothing was written: the
    same 503 with Retry-After as a lost connection, since the retry is safe."""

    def __init__(self) -> None:
        super().__init__("The service is temporarily unavailable; retry")


class ConcurrencyConflict(LedgerError):
    """Another writer appended to the stream first; the appender retries this."""

    status = 409

    def __init__(self, detail: str) -> None:
        super().__init__("The resource was changed by another request; retry")
        self.detail = detail


class IdempotencyConflict(ValidationFailed):
    """The Idempotency-Key was used before with a different request: a 422."""

    def __init__(self) -> None:
        super().__init__(
            {
                "Idempotency-Key": [
                    "This Idempotency-Key was already used with a different request"
                ]
            }
        )


class IdempotencyInProgress(LedgerError):
    status = 409

    def __init__(self) -> None:
        super().__init__("A request with this Idempotency-Key is in progress")


def invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed({field: [message]})


class PayloadTooLarge(LedgerError):
    status = 413


class UnsupportedMediaType(LedgerError):
    status = 415


class WorkersBusy(NotYetVisible):
    """Every spreadsheet worker is busy: 503 with Retry-After. It is the service's
    capacity, not the caller's fault, and a retry a few seconds later will do."""

    retry_after_s = 5

    def __init__(self) -> None:
        super().__init__("Every import worker is busy; retry")


class FoldWorkerLost(NotYetVisible):
    """A fold worker process died abruptly (the OOM killer, an operator): 503 with
    Retry-After. The pool was replaced, so the retry runs on a fresh worker."""

    def __init__(self) -> None:
        super().__init__("A worker process was lost; retry")


class TooManyRequests(LedgerError):
    """A fair-use limit was reached (services/http/fair_use.py): 429 with Retry-After,
    the
    whole seconds after which the same request would be let through."""

    status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class PoolExhausted(LedgerError):
    """No database connection came free within the pool-acquire timeout: 503 with
    Retry-After. It is the service's capacity, not the caller's fault."""

    status = 503
    retry_after_s = 1

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            f"The service is busy (no database connection free in {timeout_s:g} s);"
            " retry"
        )
