"""An import writes what the same commands sent one by one write: one set of rules.

Two fresh businesses get the same clients, one through POST /api/v3/clients/import and
one through the single-command routes (the category, each client, its opening
postings, its archiving), both through the real HTTP app on real PostgreSQL. Their
events are then compared with ids, hashes and timestamps normalised away.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from tests.support.environment import Environment
from tests.support.workbooks import HEADER, form, workbook

SHEET = [
    [*HEADER, "Category", "Deposit Amount", "Archived"],
    ["Ama Stores", "0244000001", "ama@example.com", "Accra", 1234.5, None, None, None],
    ["Kofi Traders", "0244000002", None, None, "-20.05", "Wholesale", 5.5, None],
    ["Esi Ltd", None, None, "Kumasi", 0, " wholesale ", None, "yes"],
    ["Yaw", None, None, None, 10, "Uncategorised", 3, "no"],
]
# The same rows as the single commands a caller sends: the profile, the category by
# name (None: the form's default), the opening balance, the deposit, archived.
CLIENTS = [
    ({"business_phone": "0244000001", "business_email": "ama@example.com",
      "business_address": "Accra"}, "Ama Stores", None, "1234.50", None, False),
    ({"business_phone": "0244000002"}, "Kofi Traders", "Wholesale", "-20.05", "5.50",
     False),
    ({"business_address": "Kumasi"}, "Esi Ltd", "Wholesale", None, None, True),
    ({}, "Yaw", "Uncategorised", "10.00", "3.00", False),
]  # fmt: skip
IDS = {
    "client_id": "client",
    "account_id": "account",
    "deposit_account_id": "account",
    "category_id": "category",
    "transaction_id": "entry",
    "deposit_id": "entry",
}


@pytest.fixture
async def other_business(environment: Environment) -> dict[str, Any]:
    """A second fresh business, to send the same clients to as single commands."""
    created = await provision_business(environment.settings, "Sent one by one")
    created["headers"] = {"Authorization": f"Bearer {created['api_key']}"}
    return created


async def post(
    service: TestClient, business: dict[str, Any], path: str, body: object
) -> Any:
    response = await service.post(path, json=body, headers=business["headers"])
    assert response.status in (200, 201), await response.text()
    return await response.json()


async def send_one_by_one(
    service: TestClient, business: dict[str, Any], today: dt.date
) -> None:
    response = await service.get(
        "/api/v3/clients/categories", headers=business["headers"]
    )
    categories = {row["name"]: row["id"] for row in await response.json()}
    created = await post(
        service, business, "/api/v3/clients/category", {"name": "Wholesale"}
    )
    categories["Wholesale"] = created["id"]
    for profile, name, category, unpaid, deposit, archived in CLIENTS:
        body = {**profile, "business_name": name}
        body["category_id"] = categories[category or "Uncategorised"]
        client = await post(service, business, "/api/v3/clients", body)
        path = f"/api/v3/clients/{client['id']}"
        if unpaid is not None:
            entry_type = "credit" if unpaid.startswith("-") else "debit"
            await post(
                service,
                business,
                path + "/transactions",
                {"type": entry_type, "amount": unpaid.lstrip("-"),
                 "date": today.isoformat(), "description": "Opening balance"},
            )  # fmt: skip
        if deposit is not None:
            await post(
                service,
                business,
                path + "/deposits",
                {"type": "debit", "amount": deposit, "date": today.isoformat(),
                 "description": "Opening deposit"},
            )  # fmt: skip
        if archived:
            await post(service, business, path + "/archive", {"archived": True})


async def events_of(pool: asyncpg.Pool, business: dict[str, Any]) -> list[Any]:
    """The events the business's API key wrote (not the provisioning's), in order."""
    return await pool.fetch(
        "SELECT type, stream_id, version, schema_version, payload, metadata, key_id"
        " FROM events WHERE business_id = $1"
        " AND metadata->>'principal' LIKE 'api_key:%' ORDER BY position",
        business["business_id"],
    )


def normalised(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Each id replaced by its kind and order of first appearance (the same entity
    keeps one name), the correlation id and the key's id in the principal left out."""
    seen: dict[tuple[str, int], str] = {}

    def name(kind: str, value: int) -> str:
        return seen.setdefault((kind, value), f"{kind} {len(seen)}")

    out = []
    for row in rows:
        found = re.fullmatch(r"(\w+)-(\d+)", row["stream_id"])
        assert found is not None, row["stream_id"]
        kind, number = found.groups()
        payload = {
            field: name(IDS[field], value) if field in IDS else value
            for field, value in row["payload"].items()
        }
        metadata = {**row["metadata"], "correlation_id": None, "principal": None}
        out.append(
            {
                "type": row["type"],
                "stream": name(kind, int(number)),
                "version": row["version"],
                "schema_version": row["schema_version"],
                "payload": payload,
                "metadata": metadata,
                "key_id": row["key_id"],
            }
        )
    return out


async def test_an_import_writes_the_events_of_the_same_commands_sent_one_by_one(
    service: TestClient,
    pool: asyncpg.Pool,
    business: dict[str, Any],
    other_business: dict[str, Any],
) -> None:
    """The sheet's clients (a debt, a credit, none owed; no category, a new one in two
    spellings, an existing one by name; deposits; an archived row) imported into one
    business, and sent as single commands to another, give the same events (types,
    versions, streams, payloads, metadata) besides the import's clients.imported."""
    response = await service.post(
        "/api/v3/clients/import",
        data=form(workbook("xlsxwriter", SHEET)),
        headers=business["headers"],
    )
    answer = await response.json()
    assert response.status == 201, answer
    imported = await events_of(pool, business)
    [record, *clients] = imported
    assert record["type"] == "clients.imported"
    assert {row["metadata"]["correlation_id"] for row in imported} == {
        answer["import_id"]
    }
    assert [row["type"] for row in clients] == [
        "category.created",
        *("client.created", "transaction.posted"),
        *("client.created", "transaction.posted", "deposit.posted"),
        *("client.created", "client.archived"),
        *("client.created", "transaction.posted", "deposit.posted"),
    ]
    # The import dates its opening postings the UTC day it records them.
    today = dt.date.fromisoformat(clients[2]["payload"]["date"])
    await send_one_by_one(service, other_business, today)
    assert normalised(clients) == normalised(await events_of(pool, other_business))
