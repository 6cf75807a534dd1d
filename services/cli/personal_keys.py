"""`ledger client erase ID --business B` and `ledger master-key rotate`: the operator's
two commands over personal data (shared/personal_data.py).

An erasure is a command like any other, decided and appended by an appender of its
own on the admin pool (as `ledger business create` makes a business's category), with
`cli` as its principal. A rotation re-wraps, under the current master key, every
client key wrapped by another (LEDGER_MASTER_PREVIOUS_KEYS, or the key derived from
the hash chain's key), then re-seals every webhook endpoint's secret sealed by
another (services/webhooks/secrets.py), a batch at a time, each batch in its own
transaction. It never touches an event: the client keys and the secrets themselves
do not change, so receivers keep verifying with the secret they hold.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid

import asyncpg

from services import bootstrap
from services.command_api.appender import Appender
from services.webhooks.secrets import resealed
from shared import events as e
from shared import personal_data
from shared.clock import clock_from
from shared.commands import EraseClient
from shared.config import Settings
from shared.errors import LedgerError
from shared.events import Metadata
from shared.key_settings import settings_master_keys

ROTATE_BATCH = 1000


async def erase_client(
    settings: Settings, business_id: int | None, client_id: int, as_json: bool
) -> int:
    """Erase one client's personal data; 1 (and why) when it cannot be. Client ids
    are unique across businesses: without `business_id`, the client's own."""
    master = settings_master_keys(settings).current
    async with bootstrap.admin_pool(settings) as pool:
        if business_id is None:
            business_id = await pool.fetchval(
                "SELECT business_id FROM events WHERE stream_id = $1 AND version = 1",
                e.client_stream(client_id),
            )
            if business_id is None:
                print(f"ledger: Client {client_id} not found", file=sys.stderr)
                return 1
        appender = Appender(
            pool,
            settings.hmac_key.encode(),
            batch_size_max=1,
            clock=clock_from(settings.test_clock_start),
            master=master,
        )
        appender.start()
        try:
            command = EraseClient(business_id=business_id, client_id=client_id)
            metadata = Metadata(correlation_id=str(uuid.uuid4()), principal="cli")
            result = await appender.submit(command, metadata, lambda _: (200, b""))
        except LedgerError as error:
            print(f"ledger: {error}", file=sys.stderr)
            return 1
        finally:
            await appender.stop()
    answer = {
        "business_id": business_id,
        "client_id": client_id,
        "erased": True,
        "position": result.position,  # None: it was erased before
    }
    if as_json:
        print(json.dumps(answer))
    else:
        print(f"ledger: client {client_id} of business {business_id} is erased")
    return 0


async def rotate_master_key(settings: Settings) -> int:
    """Re-wrap every client key, and re-seal every webhook secret, not wrapped by the
    current master key."""
    current = settings_master_keys(settings).current
    counts = {"client keys": 0, "webhook secrets": 0}
    batches = {"client keys": _rewrap_batch, "webhook secrets": _reseal_batch}
    async with bootstrap.admin_connection(settings) as conn:
        for kind, rewrap in batches.items():
            try:
                while batch := await rewrap(conn, current):
                    counts[kind] += batch
            except personal_data.PersonalDataError as error:  # that batch rolled back
                print(
                    f"ledger: {error}; give it in LEDGER_MASTER_PREVIOUS_KEYS and run"
                    f" again ({_counted(counts)} re-wrapped so far)",
                    file=sys.stderr,
                )
                return 1
    print(
        f"ledger: {_counted(counts)} re-wrapped under master key {current.id.hex()}",
        file=sys.stderr,
    )
    return 0


def _counted(counts: dict[str, int]) -> str:
    return " and ".join(f"{count} {kind}" for kind, count in counts.items())


async def _rewrap_batch(
    conn: asyncpg.Connection, current: personal_data.MasterKey
) -> int:
    """Re-wrap up to ROTATE_BATCH keys in one transaction; how many."""
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT business_id, stream_id, wrapped FROM client_keys"
            " WHERE substring(wrapped FOR $1) <> $2 LIMIT $3 FOR UPDATE",
            personal_data.MASTER_ID_BYTES,
            current.id,
            ROTATE_BATCH,
        )
        await conn.executemany(
            "UPDATE client_keys SET wrapped = $3"
            " WHERE business_id = $1 AND stream_id = $2",
            [_rewrapped(current, *row.values()) for row in rows],
        )
    return len(rows)


async def _reseal_batch(
    conn: asyncpg.Connection, current: personal_data.MasterKey
) -> int:
    """Re-seal up to ROTATE_BATCH webhook secrets in one transaction; how many. FOR
    UPDATE: a secret rotated through the API meanwhile waits for this transaction
    (and its new secret, sealed under the API's current key, is then kept)."""
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT id, business_id, secret_sealed FROM webhook_endpoints"
            " WHERE substring(secret_sealed FOR $1) <> $2 LIMIT $3 FOR UPDATE",
            personal_data.MASTER_ID_BYTES,
            current.id,
            ROTATE_BATCH,
        )
        await conn.executemany(
            "UPDATE webhook_endpoints SET secret_sealed = $2 WHERE id = $1",
            [
                (
                    row["id"],
                    resealed(
                        current, row["business_id"], row["id"], row["secret_sealed"]
                    ),
                )
                for row in rows
            ],
        )
    return len(rows)


def _rewrapped(
    current: personal_data.MasterKey, business_id: int, stream_id: str, wrapped: bytes
) -> tuple[int, str, bytes]:
    key = personal_data.unwrap(wrapped, business_id, stream_id)
    return (
        business_id,
        stream_id,
        personal_data.wrap(current, business_id, stream_id, key),
    )


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`ledger client erase` and `ledger master-key rotate`."""
    client = sub.add_parser("client", help="clients").add_subparsers(
        dest="action", required=True
    )
    erase = client.add_parser(
        "erase", help="erase a client's personal data (its figures stay)"
    )
    erase.add_argument("client_id", type=int)
    erase.add_argument("--business", type=int, help="its business (by default: found)")
    erase.add_argument("--json", action="store_true")
    master = sub.add_parser(
        "master-key", help="the master key of the client keys and webhook secrets"
    ).add_subparsers(dest="action", required=True)
    master.add_parser(
        "rotate",
        help="re-wrap every client key and webhook secret under the current master key",
    )
