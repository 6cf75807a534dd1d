"""The HTTP API as the end-to-end tests drive it: one business's key, every answer a
Reply with its status, headers, exact body (money as Decimal) and raw bytes, and
helpers for the writes a test builds on."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec

from tests.e2e.deadlines import VISIBLE_DEADLINE_S, wait_until


class Reply(msgspec.Struct, frozen=True):
    """One HTTP answer: status, headers (case-insensitive) and body (JSON or text)."""

    status: int
    headers: Any
    body: Any
    raw: bytes


class Api:
    """The HTTP API with one business's key: each call returns a Reply."""

    def __init__(self, http: aiohttp.ClientSession, key: str | None) -> None:
        self.http = http
        self.key = key

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        headers.update(extra or {})
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: object = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Reply:
        kwargs: dict[str, Any] = {"headers": self.headers(headers), "params": params}
        if json_body is not None:
            kwargs["json"] = json_body
        if data is not None:
            kwargs["data"] = data
        async with self.http.request(method, path, **kwargs) as response:
            raw = await response.read()
            body: object = raw.decode("utf-8", "replace")
            if response.content_type == "application/json":
                # Decimal, so that money is compared exactly as written on the wire.
                body = json.loads(raw, parse_float=Decimal)
            return Reply(
                status=response.status, headers=response.headers, body=body, raw=raw
            )

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, body: object = None, **kwargs: Any) -> Reply:
        return await self.request("POST", path, json_body=body, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("DELETE", path, **kwargs)

    async def written(self, path: str, body: object) -> dict[str, Any]:
        """POST a write a test builds on, whose claim is not the 201 itself: a 202
        (committed, but the read models were not there within the read-your-writes
        bound on a loaded machine) is waited out with X-Ledger-Min-Position, so what
        the test reads next shows the write either way. Tests about the 201 post and
        assert it themselves."""
        reply = await self.post(path, body)
        assert reply.status in (201, 202), reply.body
        if reply.status == 202:
            await self.wait_for_position(int(reply.headers["X-Ledger-Position"]))
        return reply.body  # type: ignore[no-any-return]

    async def wait_for_position(self, position: int) -> None:
        """Wait on a deadline until the read models have reached `position` (each
        query waits up to the bound server-side, then answers 503 to ask again)."""
        header = {"X-Ledger-Min-Position": str(position)}

        async def reached() -> bool:
            reply = await self.get("/api/v3/clients/summary", headers=header)
            assert reply.status in (200, 503), reply.body
            return reply.status == 200

        await wait_until(reached, VISIBLE_DEADLINE_S, f"read models at {position}")

    async def create_client(self, **fields: object) -> dict[str, Any]:
        return await self.written(
            "/api/v3/clients", {"business_name": "Client", **fields}
        )

    async def post_transaction(
        self, client_id: int, entry_type: str, amount: object, **fields: object
    ) -> dict[str, Any]:
        return await self.written(
            f"/api/v3/clients/{client_id}/transactions",
            {"type": entry_type, "amount": amount, **fields},
        )

    async def post_deposit(
        self, client_id: int, entry_type: str, amount: object, **fields: object
    ) -> dict[str, Any]:
        return await self.written(
            f"/api/v3/clients/{client_id}/deposits",
            {"type": entry_type, "amount": amount, **fields},
        )

    async def create_category(self, name: str, description: str = "") -> dict[str, Any]:
        return await self.written(
            "/api/v3/clients/category", {"name": name, "description": description}
        )


def today() -> dt.date:
    """The service's idea of today: the UTC calendar date."""
    return dt.datetime.now(dt.UTC).date()
