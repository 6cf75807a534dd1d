"""Who the export route opens to: the exact bid of a business, its own clients only,
no key needed; a wrong bid is a 404 and the routes beside it still need a key."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from tests.integration.export_book import create_client, download, row
from tests.support.environment import Environment
from tests.support.spreadsheets import exported_rows

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NOT_FOUND = {"message": "Business not found"}


async def test_an_unknown_tampered_or_malformed_bid_is_a_404(
    service: TestClient, business: dict[str, Any], book: dict[str, Any]
) -> None:
    """Proves no bid but the exact one opens the export, by changing one character of
    a real bid, inventing one and sending characters no bid has, each a JSON 404."""
    bid = business["bid"]
    tampered = bid[:-1] + ("A" if bid[-1] != "A" else "B")
    for wrong in (tampered, "x" * 43, "%00", "a%2Fb", bid + "x", "é"):
        response, _ = await download(service, wrong)
        assert response.status == 404, wrong
        assert await response.json() == NOT_FOUND


async def test_each_bid_exports_only_its_own_business(
    service: TestClient,
    business: dict[str, Any],
    book: dict[str, Any],
    environment: Environment,
) -> None:
    """Proves a bid never reaches another business's data, by exporting a second
    business (with its own client) by its bid, and by the first's bid with the
    second's category id."""
    other = await provision_business(environment.settings, f"Other {uuid.uuid4()}")
    other["headers"] = {"Authorization": f"Bearer {other['api_key']}"}
    stranger = await create_client(service, other, business_name="Stranger & Co")
    _, raw = await download(service, other["bid"])
    assert exported_rows(raw) == [
        row(stranger, "Uncategorised", "0", "0", "0", "0", archived="no")
    ]
    categories = await service.get(
        "/api/v3/clients/categories", headers=other["headers"]
    )
    [other_category] = await categories.json()
    query = f"?category_id={other_category['id']}"
    _, crossed = await download(service, business["bid"], query)
    assert exported_rows(crossed) == []


async def test_the_download_is_an_xlsx_attachment_named_for_todays_utc_date(
    service: TestClient, business: dict[str, Any]
) -> None:
    """Proves the response headers (type, attachment name, exact length) and that no
    API key is needed, by downloading without an Authorization header."""
    before = dt.datetime.now(dt.UTC).date()
    response, raw = await download(service, business["bid"])
    after = dt.datetime.now(dt.UTC).date()
    assert response.status == 200
    assert response.headers["Content-Type"] == XLSX
    assert response.headers["Content-Disposition"] in {
        f'attachment; filename="clients-{day.isoformat()}.xlsx"'
        for day in (before, after)
    }
    assert int(response.headers["Content-Length"]) == len(raw)
    assert raw.startswith(b"PK") and exported_rows(raw) == []


async def test_other_routes_under_the_export_path_still_need_a_key(
    service: TestClient, business: dict[str, Any]
) -> None:
    """Proves the export's public path opens nothing else, by POSTing without a key to
    client routes that `clients-print` could be taken for as a client id."""
    for path in ("transactions", "deposits", "archive"):
        response = await service.post(f"/api/v3/clients/clients-print/{path}", json={})
        assert response.status == 401, path
        assert await response.json() == {"message": "Unauthenticated."}
