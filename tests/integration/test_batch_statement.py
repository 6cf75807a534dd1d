"""A live batch in one statement (projections/batch_statement.py): taken only for a
remembered batch whose projection gives its writes, all or nothing even when its
tracking check fails, and equal in effect to the general path."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import asyncpg

from projections.batch_statement import Write
from projections.runner import Projection, apply_batch, apply_together
from projections.tracked_versions import TrackedVersions
from shared import events as e
from tests.integration.test_projector_tracking import _forget, _posted
from tests.support.environment import Environment


class Recorder:
    """A projection over a table of its own that records which path applied what:
    `apply` (the general path) and `writes` (the one statement) insert the same
    rows, and each notes the versions it was given."""

    def __init__(self, table: str, writes_given: bool = True) -> None:
        self.table = table
        self.applied: list[list[int]] = []
        self.written: list[list[int]] = []
        self.writes_given = writes_given

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[e.Envelope]
    ) -> None:
        self.applied.append([event.version for event in events])
        await conn.execute(self._insert(), *self._args(events))

    def writes(self, events: Sequence[e.Envelope]) -> list[Write] | None:
        self.written.append([event.version for event in events])
        if not self.writes_given:
            return None
        return [Write(self._insert(), self._args(events))]

    def _insert(self) -> str:
        return (
            f"INSERT INTO {self.table}"
            " SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[])"
        )

    def _args(self, events: Sequence[e.Envelope]) -> tuple[object, ...]:
        return (
            [event.stream_id for event in events],
            [event.version for event in events],
            [event.position for event in events],
        )


async def _setup(
    environment: Environment, writes_given: bool = True
) -> tuple[asyncpg.Pool, Recorder, Projection]:
    pool = await asyncpg.create_pool(environment.admin_url, min_size=1, max_size=2)
    return pool, *await _recording(pool, writes_given)


async def _recording(
    pool: asyncpg.Pool, writes_given: bool = True
) -> tuple[Recorder, Projection]:
    """A Recorder with its table, and its projection under a name of its own."""
    recorder = Recorder(f"applied_{uuid.uuid4().hex[:8]}", writes_given)
    await pool.execute(
        f"CREATE TABLE {recorder.table} (stream_id text, version int, position bigint)"
    )
    name = f"one-statement-{uuid.uuid4().hex[:8]}"
    return recorder, Projection(name, recorder.apply, recorder.writes)


async def _drop(pool: asyncpg.Pool, recorder: Recorder, name: str) -> None:
    await pool.execute(f"DROP TABLE {recorder.table}")
    await _forget(pool, name)


async def _teardown(pool: asyncpg.Pool, recorder: Recorder, name: str) -> None:
    await _drop(pool, recorder, name)
    await pool.close()


def _at(stream_id: str, version: int, position: int) -> e.Envelope:
    event = _posted(stream_id, version)
    return e.Envelope(**{**_fields(event), "position": position})


def _fields(event: e.Envelope) -> dict[str, object]:
    return {field: getattr(event, field) for field in event.__struct_fields__}


async def test_a_remembered_batch_is_written_in_one_statement_with_its_bookkeeping(
    isolated: Environment,
) -> None:
    """The first batch of a stream is applied by the general path (nothing is
    remembered yet); the next, remembered, by its writes alone (apply is not
    called), with the tracking row, the checkpoint (its highest position) and the
    NOTIFY listing the version reached, all visible together; the memory ends at
    the new version."""
    pool, recorder, projection = await _setup(isolated)
    stream_id = f"client-{uuid.uuid4().hex[:8]}"
    remembered = TrackedVersions()
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(isolated.admin_url)
    await listener.add_listener(
        "ledger_projected", lambda *args: heard.put_nowait(args[3])
    )
    try:
        first = [_at(stream_id, 1, 11)]
        assert await apply_batch(pool, projection, first, None, remembered) == 1
        assert (recorder.applied, recorder.written) == ([[1]], [])
        async with asyncio.timeout(10):
            assert await heard.get() == f"{projection.name};{stream_id}:1"
        later = [_at(stream_id, 2, 12), _at(stream_id, 3, 13)]
        assert await apply_batch(pool, projection, later, None, remembered) == 2
        assert (recorder.applied, recorder.written) == ([[1]], [[2, 3]])
        async with asyncio.timeout(10):
            assert await heard.get() == f"{projection.name};{stream_id}:3"
        rows = await pool.fetch(f"SELECT version, position FROM {recorder.table}")
        assert sorted(tuple(row) for row in rows) == [(1, 11), (2, 12), (3, 13)]
        assert (
            await pool.fetchval(
                "SELECT version FROM projection_tracking"
                " WHERE projection = $1 AND stream_id = $2",
                projection.name,
                stream_id,
            )
            == 3
        )
        assert (
            await pool.fetchval(
                "SELECT position_last FROM projection_checkpoint WHERE projection = $1",
                projection.name,
            )
            == 13
        )
        assert remembered.known([stream_id]) == {stream_id: 3}
    finally:
        await listener.close()
        await _teardown(pool, recorder, projection.name)


async def test_a_stale_memory_fails_the_whole_statement_and_applies_once(
    isolated: Environment,
) -> None:
    """Proves the tracking check and the writes are one unit: a projector remembers
    version 1; version 2 is applied elsewhere (as during a hand-over); the first is
    then given 2 and 3. Its one statement writes 2 and 3, finds the tracking row
    moved and fails: none of its rows stay. The batch is applied again by the
    general path, which writes 3 alone. Had the statement's writes survived the
    failed check, 2 and 3 would each be there twice."""
    pool, recorder, projection = await _setup(isolated)
    stream_id = f"client-{uuid.uuid4().hex[:8]}"
    remembered = TrackedVersions()
    try:
        one, two, three = (_at(stream_id, v, 10 + v) for v in (1, 2, 3))
        assert await apply_batch(pool, projection, [one], None, remembered) == 1
        assert await apply_batch(pool, projection, [two]) == 1  # elsewhere
        assert await apply_batch(pool, projection, [two, three], None, remembered) == 1
        assert recorder.written == [[2, 3]]  # the statement that failed
        assert recorder.applied == [[1], [2], [3]]
        rows = await pool.fetch(f"SELECT version FROM {recorder.table} ORDER BY 1")
        assert [row["version"] for row in rows] == [1, 2, 3]
        assert remembered.known([stream_id]) == {stream_id: 3}
    finally:
        await _teardown(pool, recorder, projection.name)


async def test_a_batch_its_projection_cannot_write_so_takes_the_general_path(
    isolated: Environment,
) -> None:
    """Writes that answer None (a reversal, too many lines, an event of another
    kind), or a stream not remembered: each batch is applied by `apply` in a
    transaction."""
    pool, recorder, projection = await _setup(isolated, writes_given=False)
    stream_id = f"client-{uuid.uuid4().hex[:8]}"
    remembered = TrackedVersions()
    try:
        assert (
            await apply_batch(
                pool, projection, [_at(stream_id, 1, 11)], None, remembered
            )
            == 1
        )
        assert (
            await apply_batch(
                pool, projection, [_at(stream_id, 2, 12)], None, remembered
            )
            == 1
        )
        assert recorder.written == [[2]]  # asked, and declined
        assert recorder.applied == [[1], [2]]
        other = f"client-{uuid.uuid4().hex[:8]}"
        assert (
            await apply_batch(pool, projection, [_at(other, 1, 13)], None, remembered)
            == 1
        )
        assert recorder.written == [[2]]  # a stream not remembered: not asked
        assert recorder.applied == [[1], [2], [1]]
    finally:
        await _teardown(pool, recorder, projection.name)


async def test_a_batch_in_one_statement_locks_tracking_before_its_read_models(
    isolated: Environment,
) -> None:
    """Proves the lock order a replay's swap relies on (services/replay/rebuild._lock:
    tracking first, then the read models) for the one statement: while another
    session holds projection_tracking EXCLUSIVE (as the swap does), a remembered
    batch waits for it holding no lock on its read model's table; released, it
    applies."""
    pool, recorder, projection = await _setup(isolated)
    stream_id = f"client-{uuid.uuid4().hex[:8]}"
    remembered = TrackedVersions()
    swap = await asyncpg.connect(isolated.admin_url)
    try:
        first = [_at(stream_id, 1, 11)]
        assert await apply_batch(pool, projection, first, None, remembered) == 1
        async with swap.transaction():
            await swap.execute("LOCK TABLE projection_tracking IN EXCLUSIVE MODE")
            batch = asyncio.ensure_future(
                apply_batch(pool, projection, [_at(stream_id, 2, 12)], None, remembered)
            )
            waiting = None
            async with asyncio.timeout(10):
                while waiting is None:
                    await asyncio.sleep(0.02)
                    waiting = await swap.fetchval(
                        "SELECT pid FROM pg_locks WHERE NOT granted"
                        " AND relation = 'projection_tracking'::regclass"
                    )
            held = await swap.fetchval(
                "SELECT count(*) FROM pg_locks"
                " WHERE pid = $1 AND relation = $2::regclass",
                waiting,
                recorder.table,
            )
            assert held == 0
            assert not batch.done()
        assert await batch == 1
        assert recorder.written == [[2]]
    finally:
        await swap.close()
        await _teardown(pool, recorder, projection.name)


async def test_two_projections_in_one_statement_stand_or_fall_together(
    isolated: Environment,
) -> None:
    """A projector applies every projection in one statement. Both remember version
    1; version 2 is then applied to the second projection alone (as a replay's swap
    might). Given 2 and 3, the one statement writes both projections, finds the
    second's tracking row moved and fails: neither projection's rows stay (the first
    would otherwise hold 2 and 3 twice). The general path then applies 2 and 3 to the
    first and 3 to the second, in one transaction. The next batch, remembered again,
    is one statement with a NOTIFY per projection."""
    pool, first_recorder, first = await _setup(isolated)
    second_recorder, second = await _recording(pool)
    stream_id = f"client-{uuid.uuid4().hex[:8]}"
    remembered = {first.name: TrackedVersions(), second.name: TrackedVersions()}
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(isolated.admin_url)
    await listener.add_listener(
        "ledger_projected", lambda *args: heard.put_nowait(args[3])
    )
    both = [first, second]
    try:
        one, two, three, four = (_at(stream_id, v, 10 + v) for v in (1, 2, 3, 4))
        assert await apply_together(pool, both, [one], None, remembered) == 1
        assert await apply_batch(pool, second, [two]) == 1  # elsewhere
        assert await apply_together(pool, both, [two, three], None, remembered) == 2
        assert first_recorder.written == [[2, 3]]  # the statement that failed
        assert second_recorder.written == [[2, 3]]
        assert first_recorder.applied == [[1], [2, 3]]
        assert second_recorder.applied == [[1], [2], [3]]
        for recorder in (first_recorder, second_recorder):
            rows = await pool.fetch(f"SELECT version FROM {recorder.table} ORDER BY 1")
            assert [row["version"] for row in rows] == [1, 2, 3]
        while not heard.empty():
            heard.get_nowait()
        assert await apply_together(pool, both, [four], None, remembered) == 1
        assert first_recorder.written[-1] == second_recorder.written[-1] == [4]
        async with asyncio.timeout(10):
            payloads = {await heard.get(), await heard.get()}
        assert payloads == {f"{p.name};{stream_id}:4" for p in both}
        tracked = await pool.fetch(
            "SELECT projection, version FROM projection_tracking WHERE stream_id = $1",
            stream_id,
        )
        assert sorted(tuple(row) for row in tracked) == sorted(
            (p.name, 4) for p in both
        )
    finally:
        await listener.close()
        await _drop(pool, second_recorder, second.name)
        await _teardown(pool, first_recorder, first.name)
