"""What one replica's polls make of it: replay going backwards takes it out, a poll
that failed proves nothing, a failing replica is polled with a backoff, and a replica
is read only while its poll is young."""

from __future__ import annotations

import asyncpg

from services.http.replica_polls import BACKOFF_MAX_S, Replica

URL = "postgresql://app@r1:5433/ledger"


async def _never(url: str) -> asyncpg.Pool:
    raise AssertionError(f"no pool is opened here: {url}")


async def _never_connect(url: str) -> asyncpg.Connection:
    raise AssertionError(f"no connection is opened here: {url}")


def _replica(state: str) -> Replica:
    replica = Replica(URL, _never, _never_connect, URL)
    replica.state = state
    return replica


def test_replay_behind_an_earlier_poll_takes_a_replica_in_rotation_out() -> None:
    """Given a replica `in` whose poll showed replay at 5,000, when a later poll shows
    4,000 (a standby reopened behind what it served after a crash), it is marked
    failed (the sampler sets it out) and no writer passes it at 4,500; once out, the
    new position is its baseline and a later 4,100 is no failure."""
    replica = _replica("in")
    replica.observe(5_000, False, 1.0, 5_000)
    assert (replica.failure, replica.replayed, replica.caught_up) == (None, 5_000, True)
    replica.observe(4_000, False, 2.0, 5_000)
    assert replica.failure == "replay went backwards"
    assert replica.passed(4_500, 2.0, view_fresh=True) is False
    replica.went_out(None, 2.0)
    replica.observe(4_100, False, 3.0, 5_000)
    assert (replica.failure, replica.replayed, replica.caught_up) == (
        None,
        4_100,
        False,
    )
    assert replica.replayed_max == 4_100


def test_a_failed_poll_passes_no_writer_and_backs_off() -> None:
    """Given a replica that had replayed 5,000, when its polls fail it passes no
    writer (a standby that may have restarted behind proves nothing) and is polled
    again after 0.1 s, 0.2 s, 0.4 s and so on up to BACKOFF_MAX_S; one good poll
    resets both."""
    replica = _replica("in")
    replica.observe(5_000, False, 1.0, 4_000)
    delays = []
    for _ in range(8):
        replica.failed_poll(ConnectionRefusedError())
        delays.append(replica.backoff_s(0.1))
    assert replica.poll_error == "ConnectionRefusedError"
    assert replica.passed(1, 2.0, view_fresh=True) is False
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, BACKOFF_MAX_S, BACKOFF_MAX_S]
    replica.observe(5_000, False, 3.0, 4_000)
    assert (replica.poll_error, replica.failures, replica.failure) == (None, 0, None)


def test_an_out_replica_passes_writers_only_in_a_young_view_once_released() -> None:
    """Given a replica `out` released at t=10, a writer passes it at t=10 in a young
    view, not before, and not in an old view (which may not show a join begun
    since), unless its replay reached the writer's target."""
    replica = _replica("out")
    replica.released_at = 10.0
    assert replica.passed(100, 9.9, view_fresh=True) is False
    assert replica.passed(100, 10.0, view_fresh=True) is True
    assert replica.passed(100, 10.0, view_fresh=False) is False
    replica.observe(100, False, 9.0, 50)
    assert replica.passed(100, 10.0, view_fresh=False) is True


def test_a_replica_is_read_only_while_its_poll_is_young() -> None:
    """Given a replica `in` polled at t=1 with a pool, it is readable at t=1.25 with
    a view lifetime of 0.3 s, not at t=1.35."""
    replica = _replica("in")
    replica.pool = object()  # type: ignore[assignment]  # only its presence counts
    replica.observe(100, False, 1.0, 100)
    assert replica.readable(1.25, 0.3) is True
    assert replica.readable(1.35, 0.3) is False
