"""The client's one way to send a request: aiohttp, bounded retries, typed refusals.

What is retried. Every request this client sends is safe to send twice: queries read,
and every write carries an `Idempotency-Key` (the service stores the key with the
response in the transaction of the events, so a retry returns the first response and
writes nothing). A request is therefore sent again, with the same key and body, when
its outcome is unknown or the service asks for it: the connection failed or was lost,
it timed out, 502/503/504 (503 honours `Retry-After`), 429 (a fair-use limit: the
pause is at least its `Retry-After`), or 409 "in progress" (the first attempt is still
running on the service). A business refusal (400, 401, 404, 409, 412, 413, 415, 422,
500) is raised at once, never retried: sending it again cannot change the answer.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import aiohttp
import msgspec

from shared.client.errors import (
    IdempotencyInProgress,
    LedgerApiError,
    ServerError,
    TooManyRequests,
    Unavailable,
    Unreachable,
    error_for,
)

# A request whose outcome is unknown: it may or may not have reached the service.
TRANSPORT_ERRORS = (
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    TimeoutError,
)
RETRIED_STATUSES = (502, 503, 504)
_encoder = msgspec.json.Encoder(decimal_format="number")
FormFactory = Callable[[], aiohttp.FormData]


class RetryPolicy(msgspec.Struct, kw_only=True, frozen=True):
    """At most `attempts_max` attempts; the pause before attempt n + 1 is
    `backoff_first_s * 2**(n-1)` (at most `backoff_max_s`) with jitter, and never less
    than the service's Retry-After (itself capped at `retry_after_max_s`)."""

    attempts_max: int = 5
    backoff_first_s: float = 0.1
    backoff_max_s: float = 5.0
    retry_after_max_s: float = 30.0

    def pause_s(self, attempt: int, refusal: LedgerApiError | None) -> float:
        exponential = min(
            self.backoff_max_s, self.backoff_first_s * 2.0 ** (attempt - 1)
        )
        pause = exponential * random.uniform(0.5, 1.0)
        if isinstance(refusal, Unavailable | TooManyRequests):
            pause = max(pause, min(refusal.retry_after_s, self.retry_after_max_s))
        return pause


@dataclass(frozen=True)
class Answer:
    """A response the caller will decode: status, raw body, the headers it uses."""

    status: int
    body: bytes
    headers: Mapping[str, str]

    @property
    def position(self) -> int | None:
        value = self.headers.get("X-Ledger-Position")
        return int(value) if value is not None and value.isdigit() else None


@dataclass(frozen=True)
class Request:
    """One request, sent identically on every attempt."""

    method: str
    path: str
    headers: Mapping[str, str]
    params: Mapping[str, str]
    json: object = None
    form: FormFactory | None = None  # a multipart body is rebuilt for each attempt


def retried(refusal: LedgerApiError) -> bool:
    """The refusals that say "try again", never a business refusal."""
    if isinstance(refusal, Unavailable | TooManyRequests | IdempotencyInProgress):
        return True
    return isinstance(refusal, ServerError) and refusal.status in RETRIED_STATUSES


class Transport:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        retry: RetryPolicy,
        timeout_s: float,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.retry = retry
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def send(self, request: Request, passed: Collection[int] = ()) -> Answer:
        """The 2xx answer (or one whose status is in `passed`), retrying as the module
        docstring says; otherwise the refusal as a LedgerApiError."""
        attempt = 0
        while True:
            attempt += 1
            refusal: LedgerApiError
            try:
                answer = await self._attempt(request)
            except TRANSPORT_ERRORS as error:
                refusal = Unreachable(0, f"{type(error).__name__}: {error}")
                refusal.__cause__ = error
            else:
                if answer.status < 400 or answer.status in passed:
                    return answer
                refusal = error_for(
                    answer.status, answer.body, answer.headers.get("Retry-After")
                )
                if not retried(refusal):
                    raise refusal
            if attempt >= self.retry.attempts_max:
                raise refusal
            await asyncio.sleep(self.retry.pause_s(attempt, refusal))

    async def _attempt(self, request: Request) -> Answer:
        headers = dict(request.headers)
        data: bytes | aiohttp.FormData | None = None
        if request.form is not None:
            data = request.form()
        elif request.json is not None:
            data = _encoder.encode(request.json)
            headers["Content-Type"] = "application/json"
        async with self.session.request(
            request.method,
            self.base_url + request.path,
            params=dict(request.params),
            data=data,
            headers=headers,
            timeout=self.timeout,
            allow_redirects=False,
        ) as response:
            body = await response.read()
            # A case-insensitive copy that outlives the response.
            return Answer(status=response.status, body=body, headers=response.headers)
