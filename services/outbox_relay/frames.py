"""The relay's frames lane: the projectors' frames, and other businesses overtaking a
bulk transaction.

Each step publishes the next batch after the lane's cursor as one frame per partition
(shared/bus/broker.py), every frame's `position` header saying the partition has been
given every event up to the batch's last. A 100,000-row import commits 300,001 events
in one transaction, at consecutive positions (migration 0011): the lane takes 150
steps to get through them, and the projectors a while to apply them. Postings of other
businesses committed meanwhile sit behind them, so their read-your-writes would time
out. So while the batch ends inside a transaction that goes on, of a single business,
each step also publishes up to EXPRESS_BATCH events committed after that transaction,
of every other business, in position order ("express" frames, their `position`
header still the lane's cursor). Per-business order holds: those businesses have no
event inside the bulk transaction, and everything before it is published already;
the bulk transaction's own business waits its turn (its commands come after its
import). The positions sent ahead are remembered and skipped when the cursor reaches
them; after a crash they are sent again, and the projectors skip them by stream
version.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from aio_pika.abc import AbstractExchange

from shared import events as e
from shared.bus import broker
from shared.store.event_rows import SELECT_EVENTS, envelope_from_row
from shared.store.event_store import Cursor, read_after

# How a lane reads the events after its cursor: read_after, or the relay's shared
# reads (services/outbox_relay/reads.py).
Read = Callable[..., Awaitable[list[tuple[Cursor, e.Envelope]]]]
EXPRESS_BATCH = 500
# At most this many positions are remembered ahead of the cursor; beyond, the lane
# simply waits for the cursor (the projectors would dedupe the rest anyway).
AHEAD_MAX = 50_000

_EXPRESS = (
    SELECT_EVENTS
    + "WHERE position > $1 AND business_id <> $2 ORDER BY position LIMIT $3"
)
# The transaction an event belongs to, where it ends, and how many businesses it has.
_BULK = """
WITH t AS (SELECT transaction_id FROM events WHERE position = $1)
SELECT max(position) AS last, min(business_id) AS business_id,
       count(DISTINCT business_id) AS businesses
FROM events WHERE transaction_id = (SELECT transaction_id FROM t)
"""


class FramesLane:
    """Publishes the frames lane's steps (relay.Publish); holds what it sent ahead."""

    def __init__(
        self, frames: AbstractExchange, partitions: int, read: Read = read_after
    ) -> None:
        self._frames = frames
        self._partitions = partitions
        self._read = read
        self._ahead: set[int] = set()
        # Where express reading stands, and the end of the bulk transaction it was
        # reading past: a new bulk restarts it at that bulk's end (see _express).
        self._express_after = 0
        self._express_bulk_end = 0
        # The last bulk transaction looked at: (a position in it, its last position,
        # its one business or None).
        self._bulk: tuple[int, int, int | None] | None = None

    async def __call__(
        self, conn: asyncpg.Connection, cursor: Cursor, limit: int
    ) -> tuple[Cursor, int]:
        batch = await self._read(conn, cursor, limit=limit)
        if not batch:
            return cursor, 0
        last = batch[-1][0]
        fresh = [event for _, event in batch if event.position not in self._ahead]
        await self._publish(fresh, last.position)
        self._ahead = {position for position in self._ahead if position > last.position}
        if len(batch) == limit:
            await self._express(conn, last.position)
        return last, len(batch)

    async def _publish(self, events: list[e.Envelope], position: int) -> None:
        bodies = [broker.envelope_body(event) for event in events]
        await broker.publish_frames(
            self._frames, events, bodies, position, self._partitions
        )

    async def _express(self, conn: asyncpg.Connection, position: int) -> None:
        """If the batch ended inside a bulk transaction of one business, publish
        what other businesses committed after it (the next EXPRESS_BATCH)."""
        bulk = await self._bulk_at(conn, position)
        if bulk is None or len(self._ahead) >= AHEAD_MAX:
            return
        end, business_id = bulk
        if self._express_bulk_end != end:
            # A new bulk: every event up to its end is published or its own, but an
            # earlier bulk's business may have events past it held back while that
            # bulk's express ran: read again from this end, in order (what went
            # ahead already is skipped).
            self._express_bulk_end, self._express_after = end, end
        rows = await conn.fetch(
            _EXPRESS, self._express_after, business_id, EXPRESS_BATCH
        )
        if not rows:
            return
        events = [envelope_from_row(row) for row in rows]
        fresh = [event for event in events if event.position not in self._ahead]
        if fresh:
            await self._publish(fresh, position)
        self._ahead.update(event.position for event in fresh)
        self._express_after = events[-1].position

    async def _bulk_at(
        self, conn: asyncpg.Connection, position: int
    ) -> tuple[int, int] | None:
        """(its last position, its business) if the transaction of the event at
        `position` goes on past it and has one business; else None."""
        if self._bulk is None or not self._bulk[0] <= position <= self._bulk[1]:
            row = await conn.fetchrow(_BULK, position)
            one = row["business_id"] if row["businesses"] == 1 else None
            self._bulk = (position, row["last"], one)
        _, end, business_id = self._bulk
        if end <= position or business_id is None:
            return None
        return end, business_id
