"""Which clients `POST /api/v3/clients/{id}/erase` takes: archived and deleted ones
of the caller's business; never another business's (404), nor one whose events were
written before personal data was sealed (409)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from services.command_api import batch_decider
from tests.integration.test_erasure import _call
from tests.integration.test_personal_data_at_rest import _marked, _new_marker
from tests.integration.test_personal_keys_cli import _ledger
from tests.support.environment import Environment


async def test_erase_takes_deleted_clients_and_no_other_business_s(
    environment: Environment,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    headers = business["headers"]
    client = await _call(
        service, "POST", "/api/v3/clients", headers, _marked(_new_marker()), 201
    )
    path = f"/api/v3/clients/{client['id']}"
    await _call(service, "DELETE", path, headers)
    assert (await service.get(path, headers=headers)).status == 404

    stranger = await provision_business(environment.settings, "Stranger")
    foreign = {"Authorization": f"Bearer {stranger['api_key']}"}
    assert (await service.post(f"{path}/erase", headers=foreign)).status == 404
    erased = await _call(service, "POST", f"{path}/erase", headers)

    assert (erased["id"], erased["business_name"], erased["erased"]) == (
        client["id"],
        None,
        True,
    )
    assert (await service.get(path, headers=headers)).status == 404  # still deleted
    keys = await admin.fetchval(
        "SELECT count(*) FROM client_keys WHERE business_id = $1 AND stream_id = $2",
        business["business_id"],
        f"client-{client['id']}",
    )
    assert keys == 0


async def test_a_client_written_before_sealing_cannot_be_erased(
    environment: Environment,
    service: TestClient,
    business: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client whose events hold its personal fields in plain text (as every client
    written before this change) has no key to destroy: 409, naming why; `ledger audit
    plaintext` lists it, and it alone of its business."""
    headers = business["headers"]
    monkeypatch.setattr(batch_decider, "new_personal_key", lambda *_: None)
    client = await _call(
        service, "POST", "/api/v3/clients", headers, {"business_name": "Old"}, 201
    )
    monkeypatch.undo()

    refused = await service.post(
        f"/api/v3/clients/{client['id']}/erase", headers=headers
    )

    assert refused.status == 409
    assert (await refused.json())["message"] == (
        "The client's events were written before personal data was sealed:"
        " they hold its personal fields in plain text and cannot be erased."
    )
    sealed = await _call(
        service, "POST", "/api/v3/clients", headers, {"business_name": "New"}, 201
    )
    listed = await _ledger(
        environment,
        "audit",
        "plaintext",
        "--business",
        str(business["business_id"]),
        "--json",
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [
        {"business_id": business["business_id"], "client_id": client["id"]}
    ]
    assert sealed["id"] != client["id"]
