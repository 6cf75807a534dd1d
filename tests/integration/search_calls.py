"""The HTTP calls the search tests build on, against the in-process service: a new
client with the fields given, and the ids (with the paging headers) a search lists."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

Service = TestClient[web.Request, web.Application]


class Searcher:
    """One business's clients, created and searched through the HTTP API."""

    def __init__(self, service: Service, business: dict[str, Any]) -> None:
        self.service = service
        self.headers: dict[str, str] = business["headers"]

    async def post(self, path: str, body: object = None, status: int = 201) -> Any:
        answer = await self.service.post(path, json=body, headers=self.headers)
        assert answer.status == status, await answer.text()
        return await answer.json()

    async def client(self, **fields: object) -> int:
        """A new client with these fields (business_name defaults to its first
        name's): its id."""
        body = {"business_name": fields.get("first_name", "Shop"), **fields}
        created = await self.post("/api/v3/clients", body)
        client_id = created["id"]
        assert isinstance(client_id, int)
        return client_id

    async def listed(self, **params: str) -> tuple[int, Any, Any]:
        """The list's status, body and headers for these query parameters."""
        answer = await self.service.get(
            "/api/v3/clients", params=params, headers=self.headers
        )
        return answer.status, await answer.json(), answer.headers

    async def found(self, search: str, **params: str) -> list[int]:
        """The ids a search lists (its status must be 200)."""
        status, body, _ = await self.listed(search=search, **params)
        assert status == 200, body
        return [client["id"] for client in body]
