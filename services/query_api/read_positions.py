"""The position a query's answer reflects: X-Ledger-Min-Position honoured before the
read, the read models' position noted with it, and sent back as X-Ledger-Position."""

from __future__ import annotations

from aiohttp import web

from services.http.edge import SETTINGS, json_response, whole_number
from services.http.projection_wait import WAITER
from services.http.replica_reads import ReadTarget, ReplicaBehind
from services.query_api import queries
from shared.errors import NotYetVisible, ValidationFailed

READ_POSITION = web.RequestKey("read_position", int)


async def min_position(request: web.Request, target: ReadTarget) -> None:
    """Honour X-Ledger-Min-Position (wait until the read models have reached it), then
    note the position the read models are at, which the answer carries."""
    await wait_min_position(request, target)
    # Read before the data: the body then reflects at least this position.
    request[READ_POSITION] = await queries.read_position(target.pool)


async def wait_min_position(request: web.Request, target: ReadTarget) -> None:
    """Honour X-Ledger-Min-Position: wait until the read models have reached it. A
    replica that has not applied it yet leaves the read to the primary
    (ReplicaBehind), which waits: a standby hears no NOTIFY to wait on."""
    header = request.headers.get("X-Ledger-Min-Position")
    if header is None:
        return
    position = whole_number(header.strip())
    if position is None:
        raise ValidationFailed(
            {"X-Ledger-Min-Position": ["The X-Ledger-Min-Position must be an integer."]}
        )
    if target.replica is not None:
        if await queries.read_position(target.pool) < position:
            raise ReplicaBehind()
        return
    timeout = request.app[SETTINGS].read_your_writes_timeout_s
    if not await request.app[WAITER].wait_for_position(position, timeout):
        raise NotYetVisible("The read models have not reached that position yet")


def answer(
    request: web.Request, body: object, headers: dict[str, str] | None = None
) -> web.Response:
    """A query's JSON answer, with the position its read models had reached."""
    position = {"X-Ledger-Position": str(request[READ_POSITION])}
    return json_response(body, headers={**position, **(headers or {})})
