"""The relay's reads of the store, shared by its two lanes when they can be.

Both lanes follow the same events (services/outbox_relay/relay.py) and, while neither
lags, stand at the same cursor and wake on the same NOTIFY: each read the same rows,
a round trip and a decoding of every event twice. SharedReads lets the second lane
take the first one's read instead: the same cursor and limit, read (or being read)
since the last NOTIFY arrived, and not yet taken by that lane. Such a read is as
fresh as a new one would be for what the lane waits on: anything committed since it
began notifies later and wakes the lane again. A read is taken at most once per
lane, so a lane polling after IDLE_POLL_S (a NOTIFY may be lost) always reads anew.
"""

from __future__ import annotations

import asyncio

import asyncpg
import msgspec

from shared import events as e
from shared.store.event_store import Cursor, read_after

Batch = list[tuple[Cursor, e.Envelope]]


class _Read(msgspec.Struct):
    position: int
    limit: int
    notifications: int  # the count when it began
    batch: asyncio.Future[Batch]
    taken_by: set[str]


class SharedReads:
    """read_after for the lanes, each read served to both lanes when it can be."""

    def __init__(self) -> None:
        self._notifications = 0
        self._last: _Read | None = None

    def notified(self) -> None:
        """Called for every `ledger_events` NOTIFY: reads begun before it are stale."""
        self._notifications += 1

    async def read(
        self, conn: asyncpg.Connection, cursor: Cursor, *, limit: int, lane: str
    ) -> Batch:
        """The committed events after `cursor` (at most `limit`), as read_after reads
        them on `conn`, or as the other lane's read found them."""
        last = self._last
        if (
            last is not None
            and last.position == cursor.position
            and last.limit == limit
            and last.notifications == self._notifications
            and lane not in last.taken_by
        ):
            last.taken_by.add(lane)
            return await asyncio.shield(last.batch)
        batch: asyncio.Future[Batch] = asyncio.ensure_future(
            read_after(conn, cursor, limit=limit)
        )
        self._last = _Read(cursor.position, limit, self._notifications, batch, {lane})
        return await asyncio.shield(batch)
