"""A projector's memory of the tracking rows it committed, to spare a read per batch.

Each batch first reads (and locks) its streams' tracking rows: the versions applied
(projections/runner.py). A live projector is its partitions' only consumer, so the
versions it committed last are almost always still the rows' versions, and a batch
whose every stream it remembers skips that read. It stays exact without the lock:
the batch's tracking UPDATE moves a row only from the version remembered, and if a
row has moved meanwhile (another projector during a hand-over, a replay's swap, an
event applied on its own after a failed batch), the UPDATE finds fewer rows, the
batch raises StaleTracking and rolls back, and it is applied again from the rows
read, with the memory cleared. Tracking versions only grow, so a version remembered
is never above the row's: an event it calls a duplicate is one.
"""

from __future__ import annotations

from collections.abc import Iterable

STREAMS_MAX = 100_000  # streams remembered (a few MB); the oldest are forgotten


class StaleTracking(Exception):
    """A tracking row was not at the version remembered: the batch rolled back."""


class TrackedVersions:
    """The last version this process committed per stream, for one projection."""

    def __init__(self, streams_max: int = STREAMS_MAX) -> None:
        self._versions: dict[str, int] = {}
        self._staged: dict[str, int] = {}
        self._streams_max = streams_max

    def known(self, streams: Iterable[str]) -> dict[str, int] | None:
        """The versions of all of `streams`, or None if one is not remembered."""
        versions = self._versions
        try:
            return {stream: versions[stream] for stream in streams}
        except KeyError:
            return None

    def stage(self, tracked: dict[str, int]) -> None:
        """The versions a batch is writing, remembered once it commits."""
        self._staged = tracked

    def committed(self) -> None:
        """The staged batch committed: remember its versions."""
        versions = self._versions
        for stream, version in self._staged.items():
            versions.pop(stream, None)  # the most recent last
            versions[stream] = version
        self._staged = {}
        while len(versions) > self._streams_max:
            del versions[next(iter(versions))]

    def forget(self) -> None:
        self._versions.clear()
        self._staged = {}
