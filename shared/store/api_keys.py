"""Businesses and their API keys (admin data). A key, and a business's export bid,
is shown once and stored as a hash."""

from __future__ import annotations

import hashlib
import secrets

import asyncpg
import msgspec


class Business(msgspec.Struct, frozen=True, kw_only=True):
    business_id: int
    owner_id: int
    name: str
    currency: str
    key_id: int = 0


def new_key() -> str:
    return "lk_" + secrets.token_urlsafe(32)


def new_bid() -> str:
    """The export route's capability: unguessable, 256 bits."""
    return secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """The stored form of an API key or a bid (shared/store/sql/0010_bid_hash.sql). Both
    carry 256 random bits, so a fast hash is enough: nothing to brute-force."""
    return hashlib.sha256(key.encode()).hexdigest()


_BY_KEY = """
SELECT b.business_id, b.owner_id, b.name, b.currency, k.key_id
FROM api_keys k JOIN businesses b USING (business_id)
WHERE k.key_hash = $1 AND k.revoked_at IS NULL
"""


async def business_for_key(
    conn: asyncpg.Pool | asyncpg.Connection, key: str
) -> Business | None:
    """The business of an active API key; None for an unknown or revoked one."""
    return await business_for_key_hash(conn, key_hash(key))


async def business_for_key_hash(
    conn: asyncpg.Pool | asyncpg.Connection, hashed: str
) -> Business | None:
    """business_for_key() for a key already hashed (key_hash): the API's key cache
    (services/http/api_key_cache.py) keeps hashes, never the keys themselves."""
    row = await conn.fetchrow(_BY_KEY, hashed)
    if row is None:
        return None
    return Business(
        business_id=row["business_id"],
        owner_id=row["owner_id"],
        name=row["name"],
        currency=row["currency"].strip(),
        key_id=row["key_id"],
    )


async def create_business(
    conn: asyncpg.Connection, name: str, currency: str, owner_id: int | None
) -> tuple[Business, str, str]:
    """Insert a business and its first key; returns (business, bid, key)."""
    bid = new_bid()
    row = await conn.fetchrow(
        "INSERT INTO businesses (owner_id, name, currency, bid_hash)"
        " VALUES (coalesce($1, nextval('owner_id_seq')), $2, $3, $4)"
        " RETURNING business_id, owner_id",
        owner_id,
        name,
        currency,
        key_hash(bid),
    )
    business = Business(
        business_id=row["business_id"],
        owner_id=row["owner_id"],
        name=name,
        currency=currency,
    )
    key_id, key = await create_key(conn, business.business_id)
    return msgspec.structs.replace(business, key_id=key_id), bid, key


async def create_key(conn: asyncpg.Connection, business_id: int) -> tuple[int, str]:
    key = new_key()
    key_id = await conn.fetchval(
        "INSERT INTO api_keys (business_id, key_hash) VALUES ($1, $2) RETURNING key_id",
        business_id,
        key_hash(key),
    )
    return key_id, key


async def revoke_key(conn: asyncpg.Connection, key_id: int) -> bool:
    status = await conn.execute(
        "UPDATE api_keys SET revoked_at = now()"
        " WHERE key_id = $1 AND revoked_at IS NULL",
        key_id,
    )
    return bool(status == "UPDATE 1")
