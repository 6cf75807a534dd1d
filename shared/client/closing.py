"""What `async with` does on the way out for the SDK's connections: close.

LedgerClient and Subscriber both hold a connection (an aiohttp session, a RabbitMQ
connection) that the block's end must close whether or not the block raised.
"""

from __future__ import annotations

import types


class ClosedOnExit:
    """`async with` ends by awaiting `close()`; the exception, if any, propagates."""

    async def close(self) -> None:
        raise NotImplementedError

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        await self.close()
