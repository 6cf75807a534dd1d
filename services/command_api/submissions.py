"""What flows through the appender: a submission in, a decision, a result out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec

from services.command_api.category_names import NameClaim
from shared import commands as c
from shared import domain
from shared import events as e
from shared.monitors import MonitorState
from shared.store.new_events import NewEvent


class IdempotencyClaim(msgspec.Struct, frozen=True):
    key: str
    request_hash: str


class Outcome(msgspec.Struct, kw_only=True):
    """What a decided command did: its events, the stream's new state, its category."""

    events: list[e.Envelope]
    client: domain.ClientState | None = None
    category: domain.CategoryState | None = None
    monitor: MonitorState | None = None


class Result(msgspec.Struct, kw_only=True, frozen=True):
    status: int
    body: bytes
    position: int | None = None
    stream_id: str | None = None
    version: int | None = None
    replayed: bool = False


Render = Callable[[Outcome], tuple[int, bytes]]


class Submission:
    def __init__(
        self,
        command: c.LedgerCommand,
        metadata: e.Metadata,
        render: Render,
        idempotency: IdempotencyClaim | None,
    ) -> None:
        self.command = command
        self.metadata = metadata
        self.render = render
        self.idempotency = idempotency
        self.future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()

    def fail(self, error: BaseException) -> None:
        """Answer `error`, unless answered already."""
        if not self.future.done():
            self.future.set_exception(error)


class Decided(msgspec.Struct, kw_only=True):
    submission: Submission
    new_events: list[NewEvent]
    outcome: Outcome
    name: NameClaim | None = None  # a new category's, claimed as it is appended

    def answer_client(self) -> tuple[str | None, bool]:
        """The client stream its answer belongs to (an erasure finds a kept answer
        by it, even one that wrote nothing), and whether that client has a key."""
        client = self.outcome.client
        sealed = client is not None and client.personal_key is not None
        if self.new_events:
            return self.new_events[0].stream_id, sealed
        client_id = getattr(self.submission.command, "client_id", None)
        if not isinstance(client_id, int):
            return None, sealed
        return e.client_stream(client_id), sealed
