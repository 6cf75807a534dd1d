"""The export and the import together: a business's export imported into another
business gives the same book."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from tests.integration.import_calls import category, get, send


async def command(
    service: TestClient, business: dict[str, Any], path: str, body: object
) -> Any:
    response = await service.post(path, json=body, headers=business["headers"])
    assert response.status in (200, 201), await response.text()
    return await response.json()


async def make_book(service: TestClient, business: dict[str, Any]) -> None:
    """Clients with a debt, a credit balance, a deposit, categories and an archive."""
    wholesale = await category(service, business, "Wholesale")
    clients = "/api/v3/clients"
    ama = await command(
        service,
        business,
        clients,
        {
            "business_name": "Ama Stores",
            "business_phone": "+233 24 000 0001",
            "business_email": "ama@example.com",
            "business_address": "12 Ring Road, Accra",
            "category_id": wholesale["id"],
        },
    )
    kofi = await command(service, business, clients, {"business_name": "Kofi"})
    esi = await command(service, business, clients, {"business_name": "Esi Ltd"})
    await command(service, business, clients, {"business_name": "Yaw"})
    postings = [
        (ama, "transactions", "debit", "1234.56"),
        (ama, "transactions", "credit", "0.07"),
        (ama, "deposits", "debit", "500"),
        (kofi, "transactions", "debit", "100"),
        (kofi, "transactions", "credit", "350.75"),
        (esi, "transactions", "debit", "0.07"),
        (esi, "deposits", "debit", "20.10"),
    ]
    for client, kind, entry_type, amount in postings:
        path = f"{clients}/{client['id']}/{kind}"
        await command(service, business, path, {"type": entry_type, "amount": amount})
    await command(service, business, f"{clients}/{esi['id']}/archive", {})


def comparable(clients: list[dict[str, Any]]) -> list[tuple[object, ...]]:
    fields = (
        "business_name",
        "business_phone",
        "business_email",
        "business_address",
        "unformated_balance",
        "balance",
        "deposit_amount",
        "category",
        "archived",
    )
    return sorted(tuple(client[field] for field in fields) for client in clients)


async def test_an_export_imported_into_another_business_gives_the_same_book(
    service: TestClient, business: dict[str, Any], environment: Any
) -> None:
    """Export business A, import the file into a new business B: the clients, their
    balances (negative among them), deposits, categories and archived flags match."""
    await make_book(service, business)
    response = await service.get(f"/api/v3/clients/clients-print/{business['bid']}")
    assert response.status == 200
    raw = await response.read()
    target = await provision_business(environment.settings, "Target")
    target["headers"] = {"Authorization": f"Bearer {target['api_key']}"}
    status, body = await send(service, target, raw)
    assert status == 201, body
    assert (body["imported"], body["total_unpaid"]) == (4, 983.81)
    source = await get(service, business, "/api/v3/clients")
    copied = await get(service, target, "/api/v3/clients")
    assert comparable(copied) == comparable(source)
    assert [
        client["balance"] for client in copied if client["business_name"] == "Kofi"
    ] == ["-250.75"]
    summary = await get(service, target, "/api/v3/clients/summary")
    assert summary == await get(service, business, "/api/v3/clients/summary")
