"""A projector's memory of its committed tracking versions
(projections/tracked_versions.py)."""

from __future__ import annotations

from projections.tracked_versions import TrackedVersions


def test_versions_are_known_only_once_committed_and_only_all_together() -> None:
    remembered = TrackedVersions()
    remembered.stage({"client-1": 3, "client-2": 1})
    assert remembered.known(["client-1"]) is None  # staged, not committed
    remembered.committed()
    assert remembered.known(["client-2", "client-1"]) == {"client-2": 1, "client-1": 3}
    assert remembered.known(["client-1", "client-9"]) is None
    assert remembered.known([]) == {}


def test_a_batch_that_did_not_commit_is_never_remembered() -> None:
    remembered = TrackedVersions()
    remembered.stage({"client-1": 1})
    remembered.committed()
    remembered.stage({"client-1": 2})  # its transaction failed: no committed()
    remembered.stage({"client-2": 5})
    remembered.committed()
    assert remembered.known(["client-1", "client-2"]) == {"client-1": 1, "client-2": 5}


def test_the_oldest_streams_are_forgotten_beyond_the_bound_and_forget_clears() -> None:
    remembered = TrackedVersions(streams_max=2)
    for number in (1, 2, 3):
        remembered.stage({f"client-{number}": number})
        remembered.committed()
    assert remembered.known(["client-1"]) is None
    assert remembered.known(["client-2", "client-3"]) == {"client-2": 2, "client-3": 3}
    remembered.stage({"client-2": 4})  # used again: now the most recent
    remembered.committed()
    remembered.stage({"client-4": 1})
    remembered.committed()
    assert remembered.known(["client-3"]) is None
    assert remembered.known(["client-2", "client-4"]) == {"client-2": 4, "client-4": 1}
    remembered.forget()
    assert remembered.known(["client-2"]) is None
