"""The relay's lanes share a read when they can (services/outbox_relay/reads.py): one
read serves the other lane at the same cursor until a NOTIFY arrives, and never the
same lane twice (its poll after a lost NOTIFY must read anew)."""

from __future__ import annotations

import asyncpg

from services.command_api.appender import Appender
from services.outbox_relay.reads import SharedReads
from tests.integration.scenarios import create_client, head_cursor, id_of
from tests.support.environment import Environment

LIMIT = 100


async def test_the_other_lane_takes_the_read_until_a_notify_arrives(
    isolated: Environment,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
) -> None:
    """Two lanes at the same cursor: the second is given the first one's read (the
    same batch, not read again) even though a client was created in between, as no
    NOTIFY was counted; after one is counted, a read at that cursor is a new one and
    finds both clients."""
    conn = await asyncpg.connect(isolated.admin_url)
    other = await asyncpg.connect(isolated.admin_url)
    try:
        cursor = await head_cursor(conn)
        reads = SharedReads()
        business_id = id_of(isolated_business)
        await create_client(isolated_appender, business_id, "First")
        main = await reads.read(conn, cursor, limit=LIMIT, lane="main")
        await create_client(isolated_appender, business_id, "Second")
        frames = await reads.read(other, cursor, limit=LIMIT, lane="frames")
        assert frames is main
        assert [event.type for _, event in main] == ["client.created"]
        reads.notified()
        again = await reads.read(conn, cursor, limit=LIMIT, lane="main")
        assert [event.type for _, event in again] == ["client.created"] * 2
    finally:
        await conn.close()
        await other.close()


async def test_a_lane_never_takes_the_same_read_twice(
    isolated: Environment,
    isolated_appender: Appender,
    isolated_business: dict[str, object],
) -> None:
    """A lane that reads its cursor again with no NOTIFY between (its idle poll)
    reads anew and finds the client created meanwhile; so does a lane at another
    cursor or with another limit."""
    conn = await asyncpg.connect(isolated.admin_url)
    try:
        cursor = await head_cursor(conn)
        reads = SharedReads()
        first = await reads.read(conn, cursor, limit=LIMIT, lane="main")
        assert first == []
        await create_client(isolated_appender, id_of(isolated_business))
        polled = await reads.read(conn, cursor, limit=LIMIT, lane="main")
        assert [event.type for _, event in polled] == ["client.created"]
        limited = await reads.read(conn, cursor, limit=1, lane="frames")
        assert limited is not polled and limited == polled
    finally:
        await conn.close()
