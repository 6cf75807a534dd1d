"""`POST /api/v3/clients/{id}/erase` through the real HTTP API, relay and projectors:
the figures stay and the person goes, everywhere the service keeps or sends them."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from services.audit.report import Report
from shared import events as e
from tests.integration.audit_history import report_of
from tests.integration.event_feed import read_to_head
from tests.integration.export_book import download
from tests.integration.own_database import own_database
from tests.integration.test_personal_data_at_rest import (
    _marked,
    _new_marker,
    _published,
)
from tests.support.environment import (
    Environment,
)
from tests.support.spreadsheets import exported_rows

PERSONAL = e.PROFILE_FIELDS


async def _call(
    service: TestClient,
    method: str,
    path: str,
    headers: object,
    body: object = None,
    status: int = 200,
) -> Any:
    answer = await service.request(method, path, json=body, headers=headers)
    assert answer.status == status, await answer.text()
    return await answer.json()


async def _dump(admin_url: str) -> str:
    """`pg_dump` of the whole database (schema and data, every table), as text."""
    dumped = await asyncio.to_thread(
        subprocess.run,
        ["pg_dump", "--dbname", admin_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dumped.stdout


async def _lived(
    service: TestClient, headers: dict[str, str], marker: str
) -> tuple[dict[str, Any], str, dict[str, str]]:
    """A client with every personal field, a keyed debit with texts, a deposit and
    a reversal with texts: its body, the debit's Idempotency-Key and its body."""
    client = await _call(
        service, "POST", "/api/v3/clients", headers, _marked(marker), 201
    )
    path = f"/api/v3/clients/{client['id']}"
    key = f"debit-{uuid.uuid4()}"
    debit = {
        "type": "debit",
        "amount": "30.00",
        "description": f"Cement {marker}",
        "reference": f"INV-{marker}",
    }
    posted = await _call(
        service,
        "POST",
        f"{path}/transactions",
        {**headers, "Idempotency-Key": key},
        debit,
        201,
    )
    deposit = {"type": "debit", "amount": "7.00", "description": f"Cash {marker}"}
    await _call(service, "POST", f"{path}/deposits", headers, deposit, 201)
    small = {"type": "debit", "amount": "2.00", "description": f"Nails {marker}"}
    nails = await _call(service, "POST", f"{path}/transactions", headers, small, 201)
    reason = {"reason": f"Wrong {marker}"}
    reverse = f"{path}/transactions/{nails['id']}/reverse"
    await _call(service, "POST", reverse, headers, reason, 201)
    assert posted["description"] == f"Cement {marker}"
    return client, key, debit


async def test_an_erased_client_keeps_its_figures_and_loses_its_person(
    servers: tuple[str, str],
) -> None:
    """On a database of its own: the test vacuums it whole and searches every table."""
    async with own_database(servers, "erasure") as own:
        await _erases(own.env, own.pool, own.admin, own.service, own.business)


async def _erases(
    environment: Environment,
    pool: asyncpg.Pool,
    admin: asyncpg.Connection,
    service: TestClient,
    business: dict[str, Any],
) -> None:
    headers = business["headers"]
    marker, kept = _new_marker(), _new_marker()
    other = await _call(service, "POST", "/api/v3/clients", headers, _marked(kept), 201)
    async with _published(environment.settings, business["business_id"]) as messages:
        client, key, debit = await _lived(service, headers, marker)
        path = f"/api/v3/clients/{client['id']}"
        before = await _call(service, "GET", path, headers)
        moment = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        erased = await _call(service, "POST", f"{path}/erase", headers, {})
        again = await _call(service, "POST", f"{path}/erase", headers)

    # The figures stay, the person goes; a second erase answers the same.
    expected = {**before, **dict.fromkeys(PERSONAL), "erased": True}
    expected["updated_at"] = erased["updated_at"]
    assert erased == again == expected
    await _read_models_show(service, business, client["id"], expected, other)
    await _history_shows(service, business, client["id"], messages)

    # A retry of the keyed debit replays its answer, texts null, and applies nothing.
    replayed = await service.post(
        f"{path}/transactions",
        json=debit,
        headers={**headers, "Idempotency-Key": key},
    )
    body = await replayed.json()
    assert replayed.status == 201
    assert (body["description"], body["reference"]) == (None, None)

    report = await report_of(environment, pool, business)
    assert report == Report(ok=True, businesses=1, streams=3, events=8, differences=[])

    # As of before the erasure too: the key is gone.
    as_of = await _call(service, "GET", f"{path}?as_of={moment}", headers)
    assert {name: as_of[name] for name in PERSONAL} == dict.fromkeys(PERSONAL)
    assert (as_of["unformated_balance"], "erased" in as_of) == (
        before["unformated_balance"],
        False,  # not yet erased then
    )

    # No plaintext of the erased client in a dump once vacuumed; the other's is there.
    await admin.execute("VACUUM FULL")
    dump = await _dump(environment.admin_url)
    assert kept in dump
    assert marker not in dump


async def _read_models_show(
    service: TestClient,
    business: dict[str, Any],
    client_id: int,
    expected: dict[str, Any],
    other: dict[str, Any],
) -> None:
    """The client, the list, the statement, the deposits and the export."""
    headers, path = business["headers"], f"/api/v3/clients/{client_id}"
    assert await _call(service, "GET", path, headers) == expected
    listed = {
        c["id"]: c for c in await _call(service, "GET", "/api/v3/clients", headers)
    }
    assert listed[client_id] == expected
    assert "erased" not in listed[other["id"]]  # never erased: the seed's fields
    statement = await _call(service, "GET", f"{path}/transactions", headers)
    assert (statement["business_name"], statement["erased"]) == (None, True)
    lines = statement["transactions"]
    assert [(line["description"], line["reference"]) for line in lines] == [
        (None, None)
    ] * 3
    deposits = await _call(service, "GET", f"{path}/deposits", headers)
    assert [line["description"] for line in deposits] == [None]
    response, raw = await download(service, business["bid"])
    assert response.status == 200
    exported = {row[0]: row for row in exported_rows(raw)}  # by name; erased: ""
    assert exported[""][1:4] == ["", "", ""]  # empty cells: phone, e-mail, address
    assert exported[""][4] == Decimal(str(expected["unformated_balance"]))
    assert other["business_name"] in exported


async def _history_shows(
    service: TestClient,
    business: dict[str, Any],
    client_id: int,
    messages: list[Any],
) -> None:
    """History, the feed and RabbitMQ: client.erased, and null where fields were."""
    headers, stream = business["headers"], f"client-{client_id}"
    history = await _call(
        service, "GET", f"/api/v3/clients/{client_id}/events", headers
    )
    assert [event["type"] for event in history["data"]] == [
        "client.created",
        "transaction.posted",
        "deposit.posted",
        "transaction.posted",
        "transaction.reversed",
        "client.erased",
    ]
    created = history["data"][0]["payload"]
    assert {name: created[name] for name in PERSONAL} == dict.fromkeys(PERSONAL)
    assert history["data"][1]["payload"]["description"] is None
    assert history["data"][4]["payload"]["reason"] is None
    feed, _ = await read_to_head(service, headers)
    assert [event for event in feed if event["stream_id"] == stream] == history["data"]
    published = [m for m in messages if m["stream_id"] == stream]
    assert published[-1]["type"] == "client.erased"
    assert published[-1]["metadata"]["principal"] == f"api_key:{business['key_id']}"


async def test_an_erased_client_takes_postings_but_no_personal_data(
    service: TestClient, business: dict[str, Any], admin: asyncpg.Connection
) -> None:
    headers = business["headers"]
    client = await _call(
        service, "POST", "/api/v3/clients", headers, _marked(_new_marker()), 201
    )
    path = f"/api/v3/clients/{client['id']}"
    await _call(service, "POST", f"{path}/erase", headers, {})

    posting = {"type": "debit", "amount": "5.00", "description": "Named again"}
    posted = await _call(service, "POST", f"{path}/transactions", headers, posting, 201)
    assert (posted["description"], posted["reference"], posted["balance_after"]) == (
        None,
        None,
        5,
    )
    refused = await service.post(path, json={"first_name": "Ama"}, headers=headers)
    assert refused.status == 409
    assert await refused.json() == {"message": "The client's personal data was erased."}
    archived = await _call(service, "POST", f"{path}/archive", headers, {})
    assert (archived["archived"], archived["business_name"]) == (True, None)
    stored = await admin.fetchrow(
        "SELECT payload->>'description' AS description, sealed FROM events"
        " WHERE stream_id = $1 AND business_id = $2 AND type = 'transaction.posted'",
        f"client-{client['id']}",
        business["business_id"],
    )
    assert (stored["description"], stored["sealed"]) == (None, None)
