"""`ledger business` and `ledger key`: provisioning a business (its row, its first API
key, its "Uncategorised" category), rotating its export bid, adding and revoking keys.
Each runs on the admin's connection or pool from services/bootstrap.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid

import asyncpg

from services import bootstrap
from services.command_api.appender import Appender
from shared.clock import clock_from
from shared.commands import CreateCategory
from shared.config import Settings, SettingsError
from shared.domain import DEFAULT_CATEGORY
from shared.events import Metadata
from shared.store import api_keys


async def provision_business(
    settings: Settings, name: str, currency: str = "GHS", owner_id: int | None = None
) -> dict[str, object]:
    """Create a business with its first key and default category; returns what the CLI
    prints (the key is shown this once and stored only as a hash). The category is
    created as every command is: by an appender (one of its own, on the admin pool)."""
    async with bootstrap.admin_pool(settings) as pool:
        async with pool.acquire() as conn, conn.transaction():
            business, bid, key = await api_keys.create_business(
                conn, name, currency, owner_id
            )
        appender = Appender(
            pool,
            settings.hmac_key.encode(),
            batch_size_max=1,
            clock=clock_from(settings.test_clock_start),
        )
        appender.start()
        try:
            command = CreateCategory(
                business_id=business.business_id, name=DEFAULT_CATEGORY
            )
            metadata = Metadata(correlation_id=str(uuid.uuid4()), principal="cli")
            await appender.submit(command, metadata, lambda outcome: (201, b""))
        finally:
            await appender.stop()
    return {
        "business_id": business.business_id,
        "owner_id": business.owner_id,
        "bid": bid,
        "api_key": key,
        "key_id": business.key_id,
        "currency": currency,
    }


async def admin_command(settings: Settings, args: argparse.Namespace) -> int:
    """`ledger business create|rotate-bid`, `ledger key create|revoke`: print the
    result; 1 when the business or key does not exist."""
    if args.command == "business" and args.action == "create":
        currency = args.currency.strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise SettingsError(f"--currency {args.currency!r} is not an ISO 4217 code")
        result = await provision_business(settings, args.name, currency, args.owner_id)
        _print(result, args.json)
        return 0
    async with bootstrap.admin_connection(settings) as conn:
        try:
            return await _bid_or_key(conn, args)
        except asyncpg.ForeignKeyViolationError:
            print("ledger: no such business", file=sys.stderr)
            return 1


async def _bid_or_key(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    if args.command == "business":
        bid = api_keys.new_bid()
        done = await conn.execute(
            "UPDATE businesses SET bid_hash = $2 WHERE business_id = $1",
            args.business_id,
            api_keys.key_hash(bid),  # stored hashed: shown this once
        )
        if not done.endswith(" 1"):
            print(f"ledger: no business {args.business_id}", file=sys.stderr)
            return 1
        _print({"business_id": args.business_id, "bid": bid}, False)
    elif args.action == "create":
        key_id, key = await api_keys.create_key(conn, args.business)
        _print(
            {"business_id": args.business, "key_id": key_id, "api_key": key},
            args.json,
        )
    else:
        if not await api_keys.revoke_key(conn, args.key_id):
            print(f"ledger: no active key {args.key_id}", file=sys.stderr)
            return 1
        _print({"key_id": args.key_id, "revoked": True}, False)
    return 0


def _print(result: dict[str, object], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name}: {value}")
