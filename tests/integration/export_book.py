"""What the export tests post and expect: the HTTP calls that build a business's
clients, the download of its export without a key, and the row the export must hold
for a client; `book_of` builds the business the `book` fixture (conftest.py) gives."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient


async def call(
    service: TestClient, business: dict[str, Any], path: str, body: object = None
) -> dict[str, Any]:
    """POST (or DELETE when body is None and the path says so) with the key; 2xx."""
    method = service.delete if path.startswith("DELETE ") else service.post
    response = await method(
        path.removeprefix("DELETE "), json=body, headers=business["headers"]
    )
    assert response.status in (200, 201), await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def create_client(
    service: TestClient, business: dict[str, Any], **fields: object
) -> dict[str, Any]:
    return await call(service, business, "/api/v3/clients", fields)


async def post(
    service: TestClient,
    business: dict[str, Any],
    client: dict[str, Any],
    kind: str,
    entry_type: str,
    amount: str,
) -> None:
    path = f"/api/v3/clients/{client['id']}/{kind}"
    await call(service, business, path, {"type": entry_type, "amount": amount})


async def download(
    service: TestClient, bid: str, query: str = ""
) -> tuple[ClientResponse, bytes]:
    """GET the export without any Authorization header."""
    response = await service.get(f"/api/v3/clients/clients-print/{bid}{query}")
    return response, await response.read()


def row(client: dict[str, Any], category: str, *money: str, archived: str) -> list[Any]:
    """The exported row expected for a client: balance, debit, credit, deposit."""
    balance, debit, credit, deposit = (Decimal(amount) for amount in money)
    return [
        client["business_name"],
        client["business_phone"],
        client["business_email"],
        client["business_address"],
        balance,
        category,
        debit,
        credit,
        deposit,
        archived,
        client["created_at"],
    ]


async def book_of(service: TestClient, business: dict[str, Any]) -> dict[str, Any]:
    """A business with a categorised client, one in credit (a negative balance), an
    archived one whose name looks like a formula, one never posted to whose name holds
    a control character, and a deleted one; with the rows the export must hold."""
    wholesale = await call(
        service, business, "/api/v3/clients/category", {"name": "Wholesale"}
    )
    ama = await create_client(
        service,
        business,
        business_name="Ama Serwaa Stores",
        business_phone="+233 24 000 0001",
        business_email="ama@example.com",
        business_address="12 Ring Road, Accra",
        category_id=wholesale["id"],
    )
    await post(service, business, ama, "transactions", "debit", "1234.56")
    await post(service, business, ama, "transactions", "credit", "0.07")
    await post(service, business, ama, "deposits", "debit", "500")
    kofi = await create_client(service, business, business_name="Kofi Traders")
    await post(service, business, kofi, "transactions", "debit", "100")
    await post(service, business, kofi, "transactions", "credit", "350.75")
    formula = await create_client(
        service, business, business_name="=SUM(A1:A2)", business_address="#N/A"
    )
    await post(service, business, formula, "transactions", "debit", "0.07")
    await call(service, business, f"/api/v3/clients/{formula['id']}/archive", {})
    gone = await create_client(service, business, business_name="Gone Ltd")
    await call(service, business, f"DELETE /api/v3/clients/{gone['id']}")
    bell = await create_client(service, business, business_name="Bell\x07 & Tab\tCo")
    expected_bell = row(bell, "Uncategorised", "0", "0", "0", "0", archived="no")
    expected_bell[0] = "Bell\ufffd & Tab\tCo"
    return {
        "wholesale": wholesale,
        "rows": [
            row(ama, "Wholesale", "1234.49", "1234.56", "0.07", "500", archived="no"),
            row(kofi, "Uncategorised", "-250.75", "100", "350.75", "0", archived="no"),
            row(formula, "Uncategorised", "0.07", "0.07", "0", "0", archived="yes"),
            expected_bell,
        ],
    }
