"""Dates are UTC whatever the process's TZ: a real `ledger run` under
TZ=Pacific/Kiritimati (UTC+14) and TZ=America/Los_Angeles (UTC-8), its clock started
(LEDGER_TEST_CLOCK_START) at an instant whose local date is not its UTC date."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import invalid
from tests.e2e.supervisor import create_business, running

DAY = "2030-01-01"
# Each start's local date differs from DAY (the UTC date) for the next 12 or 22 hours.
ZONES = {
    "Pacific/Kiritimati": "2030-01-01T12:00:00Z",  # 2030-01-02 02:00 local
    "America/Los_Angeles": "2030-01-01T02:00:00Z",  # 2029-12-31 18:00 local
}


async def _statement(api: Api, client_id: int, day: str) -> list[tuple[Any, ...]]:
    reply = await api.get(
        f"/api/v3/clients/{client_id}/transactions", params={"from": day, "to": day}
    )
    assert reply.status == 200, reply.body
    return [(t["type"], t["amount"], t["date"]) for t in reply.body["transactions"]]


async def _as_of(api: Api, client_id: int, moment: str) -> tuple[int, Any]:
    reply = await api.get(f"/api/v3/clients/{client_id}", params={"as_of": moment})
    balance = reply.body["unformated_balance"] if reply.status == 200 else None
    return reply.status, balance


@pytest.mark.parametrize("zone", sorted(ZONES))
async def test_dates_are_utc_dates_under_a_non_utc_time_zone(
    servers: tuple[str, str], tmp_path: Path, zone: str
) -> None:
    """Under the zone, an undated debit, a deposit and a reversal are dated 2030-01-01
    (the UTC date of their created_at), the bound "at most tomorrow" is 2030-01-02,
    the statement's from/to, as_of (a date, and instants with offsets) and the
    export's file name all use that UTC day."""
    overrides = {"TZ": zone, "LEDGER_TEST_CLOCK_START": ZONES[zone]}
    async with (
        running(servers, tmp_path / "ledger-run.log", "tz", overrides) as service,
        aiohttp.ClientSession(base_url=service.base_url) as http,
    ):
        business = await create_business(service)
        api = Api(http, str(business["api_key"]))
        client = await api.create_client(business_name="Zone")
        debit = await api.post_transaction(client["id"], "debit", "100")
        ahead = await api.post_transaction(
            client["id"], "debit", "20", date="2030-01-02"
        )
        deposit = await api.post_deposit(client["id"], "debit", "5")
        path = f"/api/v3/clients/{client['id']}/transactions/{debit['id']}/reverse"
        reversal = await api.post(path, {})
        assert reversal.status == 201, reversal.body
        late = await api.post(
            f"/api/v3/clients/{client['id']}/transactions",
            {"type": "debit", "amount": "1", "date": "2030-01-03"},
        )
        assert (late.status, late.body) == (
            422,
            invalid({"date": ["The date may not be later than tomorrow."]}),
        )
        dated = [debit, deposit, reversal.body]
        assert [(body["date"], body["created_at"][:10]) for body in dated] == [
            (DAY, DAY)
        ] * 3
        assert (client["created_at"][:10], ahead["date"]) == (DAY, "2030-01-02")
        assert [
            await _statement(api, client["id"], day) for day in (DAY, "2030-01-02")
        ] == [
            [("debit", 100, DAY), ("credit", 100, DAY)],
            [("debit", 20, "2030-01-02")],
        ]
        assert await _statement(api, client["id"], "2029-12-31") == []
        moments = {
            "2029-12-31": (404, None),  # the end of that UTC day: not yet created
            DAY: (200, 20),
            "2030-01-01T11:59:59+14:00": (404, None),  # 2029-12-31T21:59:59Z
            "2030-01-01T23:59:59.999999-08:00": (200, 20),  # 2030-01-02T07:59:59Z
        }
        for moment, expected in moments.items():
            assert await _as_of(api, client["id"], moment) == expected, moment
        export = await api.get(f"/api/v3/clients/clients-print/{business['bid']}")
        assert export.status == 200
        disposition = export.headers["Content-Disposition"]
        assert f'filename="clients-{DAY}.xlsx"' in disposition
