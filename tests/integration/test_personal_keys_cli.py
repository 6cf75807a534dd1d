"""The operator's commands over personal data, run as `ledger` runs them: `ledger
client erase` and `ledger master-key rotate` (services/cli/personal_keys.py)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared import personal_data
from shared.config import Settings
from shared.key_settings import settings_master_keys
from tests.integration.own_database import own_database
from tests.integration.test_personal_data_at_rest import _marked, _new_marker
from tests.support.environment import (
    Environment,
)

NEW_MASTER = "a new master key of the operator's, 32 bytes or more"


async def _ledger(environment: Environment, *argv: str, **variables: str) -> Any:
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": environment.settings.database_url,
        "LEDGER_ADMIN_DATABASE_URL": environment.admin_url,
        "LEDGER_HMAC_KEY": environment.settings.hmac_key,
        **variables,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli.main", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _client(service: TestClient, business: dict[str, Any]) -> dict[str, Any]:
    answer = await service.post(
        "/api/v3/clients", json=_marked(_new_marker()), headers=business["headers"]
    )
    assert answer.status == 201, await answer.text()
    created: dict[str, Any] = await answer.json()
    return created


async def test_ledger_client_erase_erases_once_and_names_what_it_cannot(
    environment: Environment, service: TestClient, business: dict[str, Any]
) -> None:
    client = await _client(service, business)
    argv = ("client", "erase", str(client["id"]), "--business")
    business_id = str(business["business_id"])

    first = await _ledger(environment, *argv, business_id, "--json")
    # Without --business: the client's own is found.
    again = await _ledger(environment, "client", "erase", str(client["id"]), "--json")
    missing = await _ledger(environment, "client", "erase", "999999999")

    assert first.returncode == 0, first.stderr
    answer = json.loads(first.stdout)
    assert (answer["client_id"], answer["erased"], answer["position"] > 0) == (
        client["id"],
        True,
        True,
    )
    assert (again.returncode, json.loads(again.stdout)["position"]) == (0, None)
    assert (missing.returncode, missing.stderr) == (
        1,
        "ledger: Client 999999999 not found\n",
    )
    shown = await service.get(
        f"/api/v3/clients/{client['id']}", headers=business["headers"]
    )
    body = await shown.json()
    assert (body["business_name"], body["erased"]) == (None, True)
    history = await service.get(
        f"/api/v3/clients/{client['id']}/events", headers=business["headers"]
    )
    erased = (await history.json())["data"][-1]
    assert (erased["type"], erased["metadata"]["principal"]) == ("client.erased", "cli")


async def test_a_master_key_rotation_rewraps_every_key_and_rewrites_no_event(
    servers: tuple[str, str],
) -> None:
    """On a database of its own: a rotation re-wraps every key in it."""
    async with own_database(servers, "rotation") as own:
        await _rotates(own.env, own.service, own.business, own.admin)


async def _rotates(
    environment: Environment,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    client = await _client(service, business)
    stream = f"client-{client['id']}"
    events = "SELECT md5(string_agg(e::text, ',' ORDER BY position)) FROM events e"
    before = await admin.fetchrow(
        "SELECT wrapped FROM client_keys WHERE business_id = $1 AND stream_id = $2",
        business["business_id"],
        stream,
    )
    key = personal_data.unwrap(before["wrapped"], business["business_id"], stream)
    events_before = await admin.fetchval(events)
    new = settings_master_keys(
        Settings(hmac_key=environment.settings.hmac_key, master_key=NEW_MASTER)
    ).current

    rotated = await _ledger(
        environment, "master-key", "rotate", LEDGER_MASTER_KEY=NEW_MASTER
    )
    again = await _ledger(
        environment, "master-key", "rotate", LEDGER_MASTER_KEY=NEW_MASTER
    )

    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stderr.endswith(f"under master key {new.id.hex()}\n")
    assert again.stderr.startswith(
        "ledger: 0 client keys and 0 webhook secrets re-wrapped"
    )
    masters = await admin.fetch(
        "SELECT DISTINCT substring(wrapped FOR 8) AS master FROM client_keys"
    )
    assert [row["master"] for row in masters] == [new.id]
    after = await admin.fetchval(
        "SELECT wrapped FROM client_keys WHERE business_id = $1 AND stream_id = $2",
        business["business_id"],
        stream,
    )
    # The same client key, now opened by the new master key alone.
    binding = f"{business['business_id']}:{stream}".encode()
    assert AESGCM(new.secret).decrypt(after[8:20], after[20:], binding) == key
    assert await admin.fetchval(events) == events_before
    shown = await service.get(
        f"/api/v3/clients/{client['id']}", headers=business["headers"]
    )
    assert (await shown.json())["business_name"] == client["business_name"]
