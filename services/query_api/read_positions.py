"""The position a query's answer reflects: X-Ledger-Min-Position honoured before the
read, the read models' position noted with it, and sent back as X-Ledger-Position."""

from __future__ import annotations

from aiohttp import web

from services.http.edge import POOL, SETTINGS, json_response, whole_number
from services.http.projection_wait import WAITER
from services.query_api import queries
from shared.errors import NotYetVisible, ValidationFailed

READ_POSITION = web.RequestKey("read_position", int)


async def min_position(request: web.Request) -> None:
    """Honour X-Ledger-Min-Position (wait until the read models have reached it), then
    note the position the read models are at, which the answer carries."""
    await wait_min_position(request)
    # Read before the data: the body then reflects at least this position.
    request[READ_POSITION] = await queries.read_position(request.app[POOL])


async def wait_min_position(request: web.Request) -> None:
    """Honour X-Ledger-Min-Position: wait until the read models have reached it."""
    header = request.headers.get("X-Ledger-Min-Position")
    if header is not None:
        position = whole_number(header.strip())
        if position is None:
            raise ValidationFailed(
                {
                    "X-Ledger-Min-Position": [
                        "The X-Ledger-Min-Position must be an integer."
                    ]
                }
            )
        timeout = request.app[SETTINGS].read_your_writes_timeout_s
        if not await request.app[WAITER].wait_for_position(position, timeout):
            raise NotYetVisible("The read models have not reached that position yet")


def answer(
    request: web.Request, body: object, headers: dict[str, str] | None = None
) -> web.Response:
    """A query's JSON answer, with the position its read models had reached."""
    position = {"X-Ledger-Position": str(request[READ_POSITION])}
    return json_response(body, headers={**position, **(headers or {})})
