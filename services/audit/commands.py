"""`ledger audit verify` and `ledger audit checkpoint`: print, and exit non-zero on a
difference. The CLI opens their connection (services/bootstrap.audit_connection)."""

from __future__ import annotations

import sys

import asyncpg
import msgspec

from services.audit.verify import verify
from shared.config import Settings, settings_keyring
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
