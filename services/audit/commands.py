"""`ledger audit verify`, `ledger audit checkpoint` and `ledger audit plaintext`:
print, and exit non-zero on a difference. The CLI opens their connection
(services/bootstrap.audit_connection)."""

from __future__ import annotations

import sys

import asyncpg
import msgspec

from services.audit.verify import verify
from shared.config import Settings
from shared.key_settings import settings_keyring
from shared.store.chain_checkpoints import take_checkpoint


async def verify_command(
    conn: asyncpg.Connection,
    settings: Settings,
    business_id: int | None,
    as_json: bool,
) -> int:
    report = await verify(conn, settings_keyring(settings), business_id)
    if as_json:
        print(msgspec.json.encode(report).decode())
    else:
        for difference in report.differences:
            print(difference.line())
        print(report.summary(), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


async def checkpoint_command(conn: asyncpg.Connection, settings: Settings) -> int:
    heads = await take_checkpoint(conn, settings.hmac_key.encode())
    print(f"ledger: checkpointed {heads} stream heads")
    return 0


# A client created with its personal fields sealed (shared/personal_data.py) has its
# client.created sealed: its business name is never empty. One that is not was
# written before sealing existed, with every later event of it.
_PLAINTEXT = """
SELECT business_id, (payload->>'client_id')::bigint AS client_id
FROM events
WHERE type = 'client.created' AND sealed IS NULL
  AND ($1::bigint IS NULL OR business_id = $1)
ORDER BY business_id, client_id
"""


async def plaintext_command(
    conn: asyncpg.Connection, business_id: int | None, as_json: bool
) -> int:
    """The clients whose events hold personal fields in plain text (written before
    sealing existed): they cannot be erased. Exits 0 either way."""
    rows = await conn.fetch(_PLAINTEXT, business_id)
    clients = [
        {"business_id": row["business_id"], "client_id": row["client_id"]}
        for row in rows
    ]
    if as_json:
        print(msgspec.json.encode(clients).decode())
        return 0
    for client in clients:
        print(f"business {client['business_id']} client {client['client_id']}")
    print(
        f"ledger: {len(clients)} clients with personal fields in plain text",
        file=sys.stderr,
    )
    return 0
