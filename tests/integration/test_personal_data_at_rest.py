"""Personal fields at rest (shared/personal_data.py), through the real HTTP API, the
relay and the projectors: the events table holds them sealed under each client's
key, and every reader (read models, history, feed, RabbitMQ, the audit) gets them
back; a sealed field tampered with is found by the chain."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from services.audit.report import Report
from shared.config import Settings
from tests.bench import counting_client as bench_client
from tests.e2e.message_collector import collected_bodies
from tests.integration.audit_history import report_of, tamper
from tests.integration.event_feed import read_to_head
from tests.integration.import_calls import by_name, get, send
from tests.support.environment import Environment
from tests.support.workbooks import HEADER, workbook

# The bench's personal fields (tests/bench/counting_client.py), and an e-mail.
PROFILE = {**bench_client.PROFILE, "business_email": "akosua@example.com"}


def _new_marker() -> str:
    """Ten random digits: fit for a name, a phone number and an e-mail address."""
    return str(uuid.uuid4().int)[-10:]


def _marked(marker: str) -> dict[str, str]:
    """PROFILE with the business name, each value carrying `marker` (unique to the
    test, so that a search of the whole database finds only this client's)."""
    marked = {name: f"{value} {marker}" for name, value in PROFILE.items()}
    marked["business_email"] = f"akosua{marker}@example.com"
    return {"business_name": f"Boateng Traders {marker}", **marked}


def _published(settings: Settings, business_id: int) -> Any:
    """The business's messages on the topic exchange while the block runs (bodies)."""
    return collected_bodies(settings, "personal", f"{business_id}.#")


async def _post(service: TestClient, headers: object, path: str, body: object) -> Any:
    answer = await service.post(path, json=body, headers=headers)
    assert answer.status in (200, 201), await answer.text()
    return await answer.json()


async def _lived(
    service: TestClient,
    headers: object,
    profile: dict[str, str],
    texts: dict[str, str],
) -> Any:
    """A client with `profile`, a debit with a description and a reference, a deposit
    with a description, the debit reversed with a reason; then a second client with
    only a business name. The first client's body."""
    client = await _post(service, headers, "/api/v3/clients", profile)
    path = f"/api/v3/clients/{client['id']}"
    debit = {
        "type": "debit",
        "amount": "12.50",
        "description": texts["description"],
        "reference": texts["reference"],
    }
    posted = await _post(service, headers, f"{path}/transactions", debit)
    deposit = {"type": "debit", "amount": "5.00", "description": texts["deposit"]}
    await _post(service, headers, f"{path}/deposits", deposit)
    reverse = f"{path}/transactions/{posted['id']}/reverse"
    await _post(service, headers, reverse, {"reason": texts["reason"]})
    await _post(service, headers, "/api/v3/clients", {"business_name": "Plain"})
    return client


async def _assert_sealed_at_rest(
    admin: asyncpg.Connection, business_id: int, client_id: int, marker: str
) -> None:
    """Every event of the client that had a personal field set is sealed, none of its
    values shows in any column of its rows, and each client has one wrapped key."""
    stored = await admin.fetch(
        "SELECT type, payload::text AS payload, sealed, events::text AS row"
        " FROM events WHERE stream_id = $1 AND business_id = $2 ORDER BY version",
        f"client-{client_id}",
        business_id,
    )
    assert [(row["type"], row["sealed"] is not None) for row in stored] == [
        ("client.created", True),
        ("transaction.posted", True),
        ("deposit.posted", True),
        ("transaction.reversed", True),
    ]
    assert not [row["row"] for row in stored if marker in row["row"]]
    assert json.loads(stored[0]["payload"])["business_name"] == ""
    keys = await admin.fetch(
        "SELECT stream_id, length(wrapped) AS length FROM client_keys"
        " WHERE business_id = $1",
        business_id,
    )
    lengths = {row["stream_id"]: row["length"] for row in keys}
    assert len(lengths) == 2  # this client's and the plain one's
    assert lengths[f"client-{client_id}"] == 8 + 12 + 32 + 16
    assert set(lengths.values()) == {8 + 12 + 32 + 16}


async def test_personal_fields_are_sealed_in_the_store_and_open_for_every_reader(
    environment: Environment,
    pool: asyncpg.Pool,
    admin: asyncpg.Connection,
    service: TestClient,
    business: dict[str, Any],
) -> None:
    marker = _new_marker()
    profile = _marked(marker)
    texts = {
        "description": f"Rice and oil {marker}",
        "reference": f"INV-{marker}",
        "deposit": f"Advance {marker}",
        "reason": f"Keyed twice {marker}",
    }
    headers = business["headers"]
    async with _published(environment.settings, business["business_id"]) as messages:
        client = await _lived(service, headers, profile, texts)
        path = f"/api/v3/clients/{client['id']}"
        feed, _ = await read_to_head(service, headers)

    await _assert_sealed_at_rest(admin, business["business_id"], client["id"], marker)

    # The read models, the history, the feed and the messages have them in full.
    shown = await get(service, business, path)
    assert {name: shown[name] for name in profile} == profile
    history = await get(service, business, f"{path}/events")
    payloads = [event["payload"] for event in history["data"]]
    assert {name: payloads[0][name] for name in profile} == profile
    assert (payloads[1]["description"], payloads[1]["reference"]) == (
        texts["description"],
        texts["reference"],
    )
    assert payloads[2]["description"] == texts["deposit"]
    assert payloads[3]["reason"] == texts["reason"]
    own = [event for event in feed if event["stream_id"] == f"client-{client['id']}"]
    assert [event["payload"] for event in own] == payloads
    published = [m for m in messages if m["stream_id"] == f"client-{client['id']}"]
    assert [message["payload"] for message in published] == payloads
    assert [message["hash"] for message in published] == [
        event["hash"] for event in history["data"]
    ]

    report = await report_of(environment, pool, business)
    assert report == Report(ok=True, businesses=1, streams=3, events=6, differences=[])


async def test_a_sealed_field_tampered_with_breaks_the_chain(
    environment: Environment,
    pool: asyncpg.Pool,
    admin: asyncpg.Connection,
    service: TestClient,
    business: dict[str, Any],
) -> None:
    """The hash covers the sealed bytes: swapping in another client's sealed fields
    (which open under no key of this client) is a hash difference."""
    headers = business["headers"]
    first = await _post(service, headers, "/api/v3/clients", _marked(_new_marker()))
    second = await _post(service, headers, "/api/v3/clients", _marked(_new_marker()))
    await tamper(
        admin,
        "UPDATE events SET sealed = (SELECT sealed FROM events"
        "   WHERE stream_id = $2 AND business_id = $3 AND version = 1)"
        " WHERE stream_id = $1 AND business_id = $3 AND version = 1",
        f"client-{first['id']}",
        f"client-{second['id']}",
        business["business_id"],
    )

    report = await report_of(environment, pool, business)

    stream = f"client-{first['id']}"
    assert not report.ok
    # The chain breaks there; the fields open under no key of this client, so the
    # audit's fold has no such client, and the read models' one shows as extra.
    assert [(d.kind, d.stream_id, d.field) for d in report.differences] == [
        ("hash", stream, "hash"),
        ("decode", stream, None),
        ("client", stream, "row"),
        ("category", f"category-{first['category_id']}", "customer_count"),
        ("summary", None, "customers"),
    ]


async def test_imported_clients_are_sealed_under_keys_of_their_own(
    admin: asyncpg.Connection, service: TestClient, business: dict[str, Any]
) -> None:
    marker = _new_marker()
    raw = workbook(
        "openpyxl",
        [
            HEADER,
            [
                f"Ama {marker}",
                f"024{marker[:7]}",
                f"ama{marker}@example.com",
                "Accra",
                5,
            ],
            [f"Kofi {marker}", "", "", "", 0],
        ],
    )
    status, body = await send(service, business, raw)
    assert (status, body["imported"]) == (201, 2), body

    clients = by_name(await get(service, business, "/api/v3/clients"))
    ama = clients[f"Ama {marker}"]
    assert (ama["business_phone"], ama["business_email"]) == (
        f"024{marker[:7]}",
        f"ama{marker}@example.com",
    )
    sealed = await admin.fetchval(
        "SELECT count(*) FROM events WHERE business_id = $1 AND type ="
        " 'client.created' AND sealed IS NOT NULL",
        business["business_id"],
    )
    keys = await admin.fetchval(
        "SELECT count(DISTINCT wrapped) FROM client_keys WHERE business_id = $1",
        business["business_id"],
    )
    assert (sealed, keys) == (2, 2)
    assert marker not in await _database_text_of_events(admin, business)


async def _database_text_of_events(
    admin: asyncpg.Connection, business: dict[str, Any]
) -> str:
    return str(
        await admin.fetchval(
            "SELECT string_agg(e::text, ' ') FROM events e WHERE business_id = $1",
            business["business_id"],
        )
    )
