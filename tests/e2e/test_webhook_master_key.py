"""A master-key rotation re-seals the webhook secrets: after `ledger master-key
rotate`, a relay and a `ledger webhooks` process given only the new master key (the
old one dropped from LEDGER_MASTER_PREVIOUS_KEYS) still sign every delivery with the
endpoint's unchanged secret.

The endpoint is created through the in-process HTTP API and the clients through an
in-process Appender (each wrapping keys under the master key of its moment); the
rotation, the relay and the worker are `python -m services.cli.main` processes, so
that the worker's process holds no master key but the ones its settings name.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import msgspec
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.cli.businesses import provision_business
from services.command_api.appender import Appender
from shared.client import verify_signature
from shared.config import Settings
from shared.key_settings import settings_master_keys
from shared.personal_data import MasterKey
from shared.store.postgres import create_pool
from tests.e2e.deadlines import CLI_DEADLINE_S, START_DEADLINE_S, wait_until
from tests.e2e.supervisor import REPOSITORY
from tests.e2e.worker_processes import (
    admin_connection,
    killed_at_end,
    partitioned_environment,
    start_worker,
)
from tests.integration.scenarios import create_client
from tests.integration.webhook_receiver import Receiver, receiving
from tests.support.environment import Environment, free_port, service_environment
from tests.support.service import http_client

OLD = "the operator's first master key of 32 bytes or more"
NEW = "the operator's second master key of 32 bytes or more"
WEBHOOK_ENVIRONMENT = {
    "LEDGER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "1",
    "LEDGER_WEBHOOK_POLL_INTERVAL_S": "0.05",
}


@pytest.fixture
async def own(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    async with partitioned_environment(servers, "whkey", 1) as environment:
        yield environment


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    with killed_at_end() as started:
        yield started


def _settings(own: Environment, master: str) -> Settings:
    return msgspec.structs.replace(
        own.settings, master_key=master, webhook_allow_private_addresses=1
    )


def _master(own: Environment, master: str) -> MasterKey:
    return settings_master_keys(_settings(own, master)).current


async def _rotate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`ledger master-key rotate` with `env`."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli.main", "master-key", "rotate"],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_DEADLINE_S,
        check=False,
    )


async def _post(
    settings: Settings, headers: dict[str, str], path: str, body: object
) -> dict[str, object]:
    """One POST through the in-process API (its master key: the settings')."""
    async with http_client(settings) as api:
        answer = await api.post(path, json=body, headers=headers)
        created: dict[str, object] = await answer.json()
        assert answer.status == 201, created
    return created


async def _new_client(
    own: Environment, master: MasterKey, business_id: int, name: str
) -> None:
    """A client created as the API creates one, its key wrapped by `master`."""
    pool = await create_pool(own.settings.database_url, max_size=2)
    appender = Appender(pool, own.settings.hmac_key.encode(), 10, master=master)
    appender.start()
    try:
        await create_client(appender, business_id, name)
    finally:
        await appender.stop()
        await pool.close()


async def _sealed(admin: asyncpg.Connection, endpoint_id: object) -> bytes:
    sealed: bytes = await admin.fetchval(
        "SELECT secret_sealed FROM webhook_endpoints WHERE id = $1", endpoint_id
    )
    return sealed


async def _delivered_twice(receiver: Receiver, admin: asyncpg.Connection) -> None:
    async def delivered() -> bool:
        count = await admin.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'"
        )
        return bool(count == 2 and len(receiver.requests) == 2)

    await wait_until(delivered, START_DEADLINE_S, "both client.created delivered")


async def test_a_rotation_reseals_webhook_secrets_and_the_old_key_can_go(
    own: Environment, processes: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """An endpoint created under master key OLD; a rotation given only NEW fails
    naming the secret's key, and rewraps nothing; given NEW with OLD as previous, it
    re-seals the secret (and the client key) under NEW, the same secret inside. Then
    a relay and a webhook worker given only NEW deliver both clients' client.created
    (the one from before the rotation and one after), each signed with the secret
    the endpoint was created with."""
    created = await provision_business(own.settings, "Rotated")
    business_id = int(str(created["business_id"]))
    headers = {"Authorization": f"Bearer {created['api_key']}"}
    env = {**service_environment(own, free_port()), **WEBHOOK_ENVIRONMENT}
    old, new = _master(own, OLD), _master(own, NEW)
    async with receiving() as receiver, admin_connection(own) as admin:
        body = {"url": receiver.url, "events": ["client.created"]}
        endpoint = await _post(_settings(own, OLD), headers, "/api/v3/webhooks", body)
        secret, endpoint_id = str(endpoint["secret"]), endpoint["id"]
        assert (await _sealed(admin, endpoint_id))[:8] == old.id
        refused = await _rotate({**env, "LEDGER_MASTER_KEY": NEW})
        assert (refused.returncode, refused.stderr) == (
            1,
            f"ledger: the key of webhook-{endpoint_id} (business {business_id}) is"
            f" wrapped by master key {old.id.hex()}, which this process was not"
            " given; give it in LEDGER_MASTER_PREVIOUS_KEYS and run again (0 client"
            " keys and 0 webhook secrets re-wrapped so far)\n",
        )
        await _new_client(own, old, business_id, "Before Ltd")
        rotated = await _rotate(
            {**env, "LEDGER_MASTER_KEY": NEW, "LEDGER_MASTER_PREVIOUS_KEYS": OLD}
        )
        assert (rotated.returncode, rotated.stderr) == (
            0,
            "ledger: 1 client keys and 1 webhook secrets re-wrapped under master key"
            f" {new.id.hex()}\n",
        )
        sealed = await _sealed(admin, endpoint_id)
        binding = f"{business_id}:webhook-{endpoint_id}".encode()
        opened = AESGCM(new.secret).decrypt(sealed[8:20], sealed[20:], binding)
        assert (sealed[:8], opened) == (new.id, secret.encode())
        only_new = {**env, "LEDGER_MASTER_KEY": NEW}
        start_worker(processes, ["relay"], only_new, tmp_path / "relay.log")
        start_worker(processes, ["webhooks"], only_new, tmp_path / "webhooks.log")
        await _new_client(own, new, business_id, "After Ltd")
        await _delivered_twice(receiver, admin)
    names = [
        msgspec.json.decode(item.body)["payload"]["business_name"]
        for item in receiver.requests
    ]
    assert names == ["Before Ltd", "After Ltd"]
    now = time.time()
    assert all(
        verify_signature(secret, item.signature, item.body, now)
        for item in receiver.requests
    )
