"""A replica's way back into the rotation (services/http/replica_rotation.py holds
the protocol and why it is safe): claim `joining` by compare-and-set, settle VIEW_MAX,
sample the primary's LSN, then `in` once the replica has replayed past it. One step
per sample of the primary."""

from __future__ import annotations

import logging
import time

import asyncpg

from services.http import replica_table as table
from services.http.replica_polls import Replica

JOIN_STALE_S = 10.0  # a `joining` older than this (a process died mid-join) is taken
log = logging.getLogger("services.http.replica_rotation")


async def advance_join(
    primary: asyncpg.Pool, replica: Replica, began: float, lsn: int, view_max_s: float
) -> None:
    """One step of the way back in, after a sample asked for at `began` read the
    primary's flush LSN `lsn`."""
    join = replica.join
    if join is None:
        if replica.may_join(JOIN_STALE_S, time.monotonic()):
            await _claim_join(primary, replica, view_max_s)
        return
    if replica.state != "joining" or replica.changed_at != join.token:
        replica.join = None  # someone else changed it
    elif join.target is None:
        if began >= join.settle_until:
            join.target, join.target_at = lsn, time.monotonic()
    elif replica.replayed is not None and replica.replayed >= join.target:
        token = await table.set_state(primary, replica, "in", join.token)
        if token is not None:
            replica.state, replica.changed_at = "in", token
            log.info(
                "replica %s back in rotation",
                replica.name,
                extra={"event": "replica.in", "replica": replica.name},
            )
        replica.join = None


async def _claim_join(
    primary: asyncpg.Pool, replica: Replica, view_max_s: float
) -> None:
    token = await table.set_state(primary, replica, "joining", replica.changed_at)
    if token is not None:
        settle_until = time.monotonic() + view_max_s
        replica.start_join(token, settle_until)
