"""Provisioning a business: its row, its first API key, its "Uncategorised" category."""

from __future__ import annotations

import uuid

from services.command_api.appender import Appender
from services.command_api.batch_io import DEFAULT_CATEGORY
from shared.clock import clock_from
from shared.commands import CreateCategory
from shared.config import Settings
from shared.events import Metadata
from shared.store import api_keys
from shared.store.postgres import create_pool


async def provision_business(
    settings: Settings, name: str, currency: str = "GHS", owner_id: int | None = None
) -> dict[str, object]:
    """Create a business with its first key and default category; returns what the CLI
    prints (the key is shown this once and stored only as a hash)."""
    pool = await create_pool(settings.admin_database_url, max_size=2)
    try:
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
    finally:
        await pool.close()
    return {
        "business_id": business.business_id,
        "owner_id": business.owner_id,
        "bid": bid,
        "api_key": key,
        "key_id": business.key_id,
        "currency": currency,
    }
