"""A real HTTP receiver on 127.0.0.1 for the webhook worker's crash test
(test_webhook_crash.py): one path per endpoint, every request recorded on arrival,
and one request it can hold open so that the worker is killed mid-delivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
from aiohttp import web

from tests.support.environment import free_port

HELD_INDEX = 2  # with `hold`, endpoint 0's third request is held open


class Arrival(msgspec.Struct, frozen=True):
    endpoint: int  # the endpoint's index: the receiver's path is /hook/<index>
    event_id: str
    signature: str
    body: bytes


class Receiver:
    """Records every request on arrival and answers 200; with `hold`, endpoint 0's
    request number HELD_INDEX is kept open until `release` is set."""

    def __init__(self, hold: bool) -> None:
        self.arrivals: list[Arrival] = []
        self.hold = hold
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        index = int(request.match_info["index"])
        arrival = Arrival(
            endpoint=index,
            event_id=request.headers["X-Ledger-Event-Id"],
            signature=request.headers["X-Ledger-Signature"],
            body=await request.read(),
        )
        self.arrivals.append(arrival)
        if self.hold and index == 0 and len(self.of(0)) == HELD_INDEX + 1:
            self.holding.set()
            await self.release.wait()
        return web.Response(status=200, text="ok")

    def of(self, endpoint: int) -> list[str]:
        """The event ids endpoint `endpoint` received, in arrival order."""
        return [item.event_id for item in self.arrivals if item.endpoint == endpoint]


@asynccontextmanager
async def receiving(hold: bool) -> AsyncIterator[Receiver]:
    receiver = Receiver(hold)
    app = web.Application()
    app.router.add_post("/hook/{index:[0-9]+}", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    receiver.url = f"http://127.0.0.1:{port}/hook/"
    try:
        yield receiver
    finally:
        receiver.release.set()
        await runner.cleanup()
