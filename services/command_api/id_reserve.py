"""Entry and account ids drawn ahead of the postings that take them.

A batch of postings to clients whose states are cached needs nothing read before its
write but the ids of its entries (and of a deposit's account): with ids in reserve,
batch_decider.py decides it without a round trip. A batch that reads anyway draws,
with what it needs beyond the reserve, enough to fill the reserve again once it
would fall below half, in the same statement (batch_reads.py).

Ids are handed out in the order they were drawn, so one process's postings get
increasing ids in commit order, as before; two processes' ids interleave by up to a
reserve's worth. Ids still held when the process ends, and those of a batch whose
write failed, are never used: gaps, as an aborted batch leaves; a sequence never
hands an id out twice.
"""

from __future__ import annotations

from collections import deque

import msgspec

from shared.commands import DrawnIds, IdCounts

ENTRIES = 256
ACCOUNTS = 32  # a deposit posting draws one, kept only for a client's first deposit


class Drawn(msgspec.Struct, frozen=True):
    """The ids one read drew from each sequence."""

    clients: list[int]
    accounts: list[int]
    categories: list[int]
    entries: list[int]


class IdReserve:
    """The entry and account ids drawn and not yet handed out."""

    def __init__(self, entries: int = ENTRIES, accounts: int = ACCOUNTS) -> None:
        self._entries: deque[int] = deque()
        self._accounts: deque[int] = deque()
        self._sizes = (entries, accounts)

    def take(self, counts: IdCounts) -> DrawnIds | None:
        """A batch's ids from the reserve alone; None when it holds too few, or the
        batch creates a client or category (those ids are drawn when needed)."""
        if (
            counts.clients
            or counts.categories
            or counts.entries > len(self._entries)
            or counts.accounts > len(self._accounts)
        ):
            return None
        accounts = _pop(self._accounts, counts.accounts)
        return DrawnIds((), accounts, (), _pop(self._entries, counts.entries))

    def to_draw(self, counts: IdCounts) -> IdCounts:
        """What a batch that reads draws: its ids beyond the reserve, and a refill
        when the reserve would fall below half."""
        entries, accounts = self._sizes
        return IdCounts(
            clients=counts.clients,
            accounts=_short(len(self._accounts), counts.accounts, accounts),
            categories=counts.categories,
            entries=_short(len(self._entries), counts.entries, entries),
        )

    def drawn(self, counts: IdCounts, drawn: Drawn) -> DrawnIds:
        """The batch's ids after a read drew `to_draw(counts)`: the reserve's first,
        then the new ones; the rest stay in reserve."""
        self._entries.extend(drawn.entries)
        self._accounts.extend(drawn.accounts)
        return DrawnIds(
            drawn.clients,
            _pop(self._accounts, counts.accounts),
            drawn.categories,
            _pop(self._entries, counts.entries),
        )


def _short(held: int, needed: int, size: int) -> int:
    wanted = needed + (size if held - needed < size // 2 else 0)
    return max(0, wanted - held)


def _pop(ids: deque[int], count: int) -> list[int]:
    return [ids.popleft() for _ in range(count)]
