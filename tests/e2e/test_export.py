"""The export end to end: the real `ledger run` process serves the xlsx download."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import aiohttp

from tests.e2e.ledger_api import Api, today
from tests.support.spreadsheets import exported_rows, sheet_numbers

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def test_a_business_downloads_its_clients_by_bid_without_a_key(
    api: Api, business: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    """Proves the real service exports a CLI-made business's live clients with exact
    money (a negative balance, a deposit, 0.07 written as 0.07) to anyone holding the
    bid, by posting over HTTP, deleting one client and downloading with no key."""
    category = await api.create_category("Retail")
    owing = await api.create_client(
        business_name="Efua Boutique",
        business_phone="+233 20 111 2222",
        business_email="efua@example.com",
        business_address="Osu, Accra",
        category_id=category["id"],
    )
    await api.post_transaction(owing["id"], "debit", "0.07")
    await api.post_deposit(owing["id"], "debit", "1000.5")
    in_credit = await api.create_client(business_name="Yaw Motors")
    await api.post_transaction(in_credit["id"], "credit", "20351822.92")
    gone = await api.create_client(business_name="Closed Shop")
    assert (await api.delete(f"/api/v3/clients/{gone['id']}")).status == 200
    async with http.get(f"/api/v3/clients/clients-print/{business['bid']}") as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"] == XLSX
        disposition = reply.headers["Content-Disposition"]
        raw = await reply.read()
    assert disposition in {
        f'attachment; filename="clients-{day.isoformat()}.xlsx"'
        for day in (today(), today() - dt.timedelta(days=1))
    }
    assert exported_rows(raw) == [
        [
            *("Efua Boutique", "+233 20 111 2222", "efua@example.com", "Osu, Accra"),
            *(Decimal("0.07"), "Retail", Decimal("0.07"), Decimal(0)),
            *(Decimal("1000.50"), "no", owing["created_at"]),
        ],
        [
            *("Yaw Motors", "", "", ""),
            *(Decimal("-20351822.92"), "Uncategorised", Decimal(0)),
            *(Decimal("20351822.92"), Decimal(0), "no", in_credit["created_at"]),
        ],
    ]
    assert sheet_numbers(raw) == [
        *("0.07", "0.07", "0", "1000.5"),
        *("-20351822.92", "0", "20351822.92", "0"),
    ]
