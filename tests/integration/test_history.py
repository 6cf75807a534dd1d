"""GET /api/v3/clients/{id}/events: a client's whole history, as published."""

from __future__ import annotations

import json

import asyncpg
from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from shared import events as e
from shared.bus import broker
from shared.store.event_rows import SELECT_EVENTS, envelope_from_row
from tests.support.environment import Environment


async def _stored_messages(pool: asyncpg.Pool, stream_id: str) -> list[object]:
    """The stream's events as the relay would publish them (parsed JSON bodies)."""
    rows = await pool.fetch(
        SELECT_EVENTS + "WHERE stream_id = $1 ORDER BY version", stream_id
    )
    return [json.loads(broker.envelope_body(envelope_from_row(row))) for row in rows]


async def _lived_and_deleted(service: TestClient, headers: object) -> int:
    """A client created, debited and credited 10.00, renamed, then deleted."""
    created = await service.post(
        "/api/v3/clients", json={"business_name": "Audited"}, headers=headers
    )
    assert created.status == 201
    client_id: int = (await created.json())["id"]
    for entry_type in ("debit", "credit"):
        posted = await service.post(
            f"/api/v3/clients/{client_id}/transactions",
            json={"type": entry_type, "amount": "10.00"},
            headers=headers,
        )
        assert posted.status == 201
    renamed = await service.post(
        f"/api/v3/clients/{client_id}",
        json={"business_name": "Audited Ltd"},
        headers=headers,
    )
    assert renamed.status == 200
    deleted = await service.delete(f"/api/v3/clients/{client_id}", headers=headers)
    assert deleted.status == 200
    return client_id


async def test_a_deleted_clients_history_is_every_event_oldest_first(
    service: TestClient, business: dict[str, object], pool: asyncpg.Pool
) -> None:
    """Proves the history route serves the whole stream, even after the client was
    deleted (whose other routes answer 404), by living a client through five commands
    over HTTP and comparing the answer with the stored rows published as the relay
    publishes them: types, versions, rising positions, principal, payload and hash."""
    headers = business["headers"]
    client_id = await _lived_and_deleted(service, headers)
    assert (
        await service.get(f"/api/v3/clients/{client_id}", headers=headers)
    ).status == 404

    answer = await service.get(f"/api/v3/clients/{client_id}/events", headers=headers)
    assert answer.status == 200
    body = await answer.json()
    assert list(body) == ["data"]
    history = body["data"]
    assert history == await _stored_messages(pool, e.client_stream(client_id))
    assert [event["type"] for event in history] == [
        "client.created",
        "transaction.posted",
        "transaction.posted",
        "client.updated",
        "client.deleted",
    ]
    assert [event["version"] for event in history] == [1, 2, 3, 4, 5]
    positions = [event["position"] for event in history]
    assert positions == sorted(positions) and len(set(positions)) == 5
    principal = f"api_key:{business['key_id']}"
    assert {event["metadata"]["principal"] for event in history} == {principal}
    assert {event["business_id"] for event in history} == {business["business_id"]}
    assert {event["schema_version"] for event in history} == {1}
    assert [event["payload"].get("amount_minor") for event in history[1:3]] == [
        1000,
        1000,
    ]
    assert history[3]["payload"] == {
        "type": "client.updated",
        "client_id": client_id,
        "business_name": "Audited Ltd",
    }
    hashes = await pool.fetch(
        "SELECT hash FROM events WHERE stream_id = $1 ORDER BY version",
        e.client_stream(client_id),
    )
    assert [event["hash"] for event in history] == [row["hash"] for row in hashes]


async def test_history_answers_404_for_another_business_an_unknown_or_bad_id(
    service: TestClient,
    business: dict[str, object],
    environment: Environment,
    pool: asyncpg.Pool,
) -> None:
    """Another business's key, an id no client has, and a non-numeric id all answer
    404 with the same message shape; no key is a 401."""
    created = await service.post(
        "/api/v3/clients",
        json={"business_name": "Private"},
        headers=business["headers"],
    )
    assert created.status == 201
    client_id = (await created.json())["id"]
    unknown = 1 + await pool.fetchval("SELECT last_value FROM client_id_seq")
    stranger = await provision_business(environment.settings, "Stranger")
    stranger_headers = {"Authorization": f"Bearer {stranger['api_key']}"}
    for path, headers in (
        (f"/api/v3/clients/{client_id}/events", stranger_headers),
        (f"/api/v3/clients/{unknown}/events", business["headers"]),
        ("/api/v3/clients/abc/events", business["headers"]),
    ):
        answer = await service.get(path, headers=headers)
        assert answer.status == 404, path
        assert list(await answer.json()) == ["message"], path
    anonymous = await service.get(f"/api/v3/clients/{client_id}/events")
    assert anonymous.status == 401
    assert (
        await service.get(
            f"/api/v3/clients/{client_id}/events", headers=business["headers"]
        )
    ).status == 200
