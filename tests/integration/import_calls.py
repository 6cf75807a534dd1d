"""The calls the import tests make: an upload of a workbook as multipart form data
(its status and JSON body), a GET that must answer 200, clients by name, and a new
category."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.support.workbooks import form

IMPORT = "/api/v3/clients/import"


async def send(
    service: TestClient,
    business: dict[str, Any],
    raw: bytes,
    path: str = IMPORT,
    headers: dict[str, str] | None = None,
    **fields: str,
) -> tuple[int, Any]:
    response = await service.post(
        path,
        data=form(raw, **fields),
        headers={**business["headers"], **(headers or {})},
    )
    return response.status, await response.json()


async def get(service: TestClient, business: dict[str, Any], path: str) -> Any:
    response = await service.get(path, headers=business["headers"])
    assert response.status == 200, await response.text()
    return await response.json()


def by_name(clients: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {client["business_name"]: client for client in clients}


async def category(service: TestClient, business: dict[str, Any], name: str) -> Any:
    response = await service.post(
        "/api/v3/clients/category", json={"name": name}, headers=business["headers"]
    )
    assert response.status == 201, await response.text()
    return await response.json()
