"""The import route in-process: which category each row goes to, and a file sent
again, with an Idempotency-Key, or twice at once, imported once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from tests.integration.import_calls import IMPORT, by_name, category, get, send
from tests.support.workbooks import HEADER, form, workbook


async def test_rows_go_to_the_form_category_or_their_own_by_name(
    service: TestClient, business: dict[str, Any]
) -> None:
    """category_id places the rows; a Category cell overrides it, matching an existing
    category ignoring case or creating a missing one once, with exact counts."""
    vip = await category(service, business, "VIP")
    raw = workbook(
        "xlsxwriter",
        [
            [*HEADER, "Category"],
            ["Ama", None, None, None, None, None],
            ["Kofi", None, None, None, None, " vip "],
            ["Esi", None, None, None, None, "Wholesale"],
            ["Yaw", None, None, None, None, "WHOLESALE"],
        ],
    )
    status, body = await send(service, business, raw, category_id=str(vip["id"]))
    assert (status, body["category_id"]) == (201, vip["id"])
    clients = by_name(await get(service, business, "/api/v3/clients"))
    assert {name: client["category"] for name, client in clients.items()} == {
        "Ama": "VIP",
        "Kofi": "VIP",
        "Esi": "Wholesale",
        "Yaw": "Wholesale",
    }
    counts = {
        item["name"]: item["customer_count"]
        for item in await get(service, business, "/api/v3/clients/categories")
    }
    assert counts == {"Uncategorised": 0, "VIP": 2, "Wholesale": 2}


@pytest.mark.parametrize("value", ["999999999", "CAT-123"])
async def test_an_unknown_category_id_is_refused(
    service: TestClient, business: dict[str, Any], value: str
) -> None:
    """A category_id that is not one of the business's categories is a 422."""
    raw = workbook("openpyxl", [HEADER, ["Ama"]])
    status, body = await send(service, business, raw, category_id=value)
    assert (status, body["errors"]) == (
        422,
        {"category_id": ["The selected category id is invalid."]},
    )
    assert await get(service, business, "/api/v3/clients") == []


async def test_the_same_file_twice_is_a_conflict_unless_allowed(
    service: TestClient, business: dict[str, Any], environment: Any
) -> None:
    """A second upload of the same content answers 409 with the first import's id;
    allow_duplicate=true imports it again; another business may import it freely."""
    raw = workbook("openpyxl", [HEADER, ["Ama", None, None, None, "5"]])
    status, first = await send(service, business, raw)
    assert status == 201
    status, again = await send(service, business, raw)
    assert (status, again["import_id"]) == (409, first["import_id"])
    status, allowed = await send(service, business, raw, allow_duplicate="true")
    assert status == 201 and allowed["import_id"] != first["import_id"]
    assert len(await get(service, business, "/api/v3/clients")) == 2
    other = await provision_business(environment.settings, "Other")
    other["headers"] = {"Authorization": f"Bearer {other['api_key']}"}
    status, _ = await send(service, other, raw)
    assert status == 201


async def test_an_idempotency_key_replays_the_first_response(
    service: TestClient, business: dict[str, Any]
) -> None:
    """A retry with the same key and file returns the first answer and writes nothing;
    the same key with another file is a 422."""
    raw = workbook("openpyxl", [HEADER, ["Ama", None, None, None, "5"]])
    key = {"Idempotency-Key": "import-1"}
    status, first = await send(service, business, raw, headers=key)
    assert status == 201
    response = await service.post(
        IMPORT, data=form(raw), headers={**business["headers"], **key}
    )
    assert (response.status, await response.json()) == (201, first)
    assert response.headers["Idempotent-Replayed"] == "true"
    other = workbook("openpyxl", [HEADER, ["Kofi"]])
    status, body = await send(service, business, other, headers=key)
    assert (status, list(body["errors"])) == (422, ["Idempotency-Key"])
    assert len(await get(service, business, "/api/v3/clients")) == 1


async def test_the_same_file_uploaded_twice_at_once_is_imported_once(
    service: TestClient, business: dict[str, Any]
) -> None:
    """Two concurrent uploads of one file: one answers 201, the other 409 naming it,
    and the clients exist once."""
    raw = workbook("xlsxwriter", [HEADER, ["Ama", None, None, None, "5"]])
    answers = await asyncio.gather(
        send(service, business, raw), send(service, business, raw)
    )
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201, 409]
    ids = {body["import_id"] for _, body in answers}
    assert len(ids) == 1
    assert len(await get(service, business, "/api/v3/clients")) == 1
