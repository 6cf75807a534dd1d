"""The connection behind LedgerClient: one aiohttp session, the API key, and the two
ways to call the service (a query, a command with its Idempotency-Key)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Self, TypedDict, TypeVar

import aiohttp
import msgspec

from shared.client import models as m
from shared.client.closing import ClosedOnExit
from shared.client.transport import (
    Answer,
    FormFactory,
    Request,
    RetryPolicy,
    Transport,
)

T = TypeVar("T")


class WriteOptions(TypedDict, total=False):
    """What every command but delete_client takes besides its own fields."""

    # The key the service remembers the write by: the same key again answers the
    # first response and writes nothing. Default: a fresh uuid4 (the same on retries).
    idempotency_key: str | None
    # Answer 202 once committed, without waiting for the read models to show it.
    respond_async: bool


class ApiSession(ClosedOnExit):
    """The connection LedgerClient's methods share: base URL, API key, retries.

    `base_url` is the service's root (`http://ledger:8080`); the routes' paths are
    appended. Pass `session` to share an aiohttp.ClientSession (it is then not
    closed here)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        retry: RetryPolicy | None = None,
        timeout_s: float = 30.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self._retry = retry or RetryPolicy()
        self._timeout_s = timeout_s
        self._session = session
        self._owns_session = session is None
        self._transport: Transport | None = None

    async def __aenter__(self) -> Self:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._transport = Transport(
            self._session, self.base_url, self._retry, self._timeout_s
        )
        return self

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
        self._transport = None

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
        }
        return {**headers, **(extra or {})}

    async def _get(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        min_position: int | None = None,
        passed: tuple[int, ...] = (),
    ) -> Answer:
        assert self._transport is not None, "use `async with LedgerClient(...)`"
        extra = {}
        if min_position is not None:
            extra["X-Ledger-Min-Position"] = str(min_position)
        request = Request("GET", path, self._headers(extra), params or {})
        return await self._transport.send(request, passed)

    async def _read(
        self,
        path: str,
        body_type: type[T],
        params: Mapping[str, str] | None = None,
        min_position: int | None = None,
    ) -> T:
        """A query's answer decoded into its body type."""
        answer = await self._get(path, params, min_position)
        return msgspec.json.decode(answer.body, type=body_type)

    async def _write(
        self,
        method: str,
        path: str,
        body_type: type[T],
        *,
        json: object = None,
        form: FormFactory | None = None,
        extra: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        respond_async: bool = False,
    ) -> m.Committed[T]:
        """Send a command with its Idempotency-Key (the same on every attempt)."""
        assert self._transport is not None, "use `async with LedgerClient(...)`"
        key = idempotency_key or str(uuid.uuid4())
        headers = self._headers({"Idempotency-Key": key, **(extra or {})})
        if respond_async:
            headers["Prefer"] = "respond-async"
        request = Request(method, path, headers, {}, json=json, form=form)
        answer = await self._transport.send(request)
        return m.Committed(
            body=msgspec.json.decode(answer.body, type=body_type),
            status=answer.status,
            position=answer.position,
            idempotency_key=key,
            replayed=answer.headers.get("Idempotent-Replayed") == "true",
        )
