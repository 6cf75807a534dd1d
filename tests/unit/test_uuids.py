"""Random UUIDs from batched OS random bytes (shared/uuids.py)."""

from __future__ import annotations

import os
import uuid

from shared import uuids


def test_ids_are_random_version_4_uuids_never_repeated() -> None:
    ids = [uuids.uuid4() for _ in range(3 * uuids.BATCH + 1)]

    assert {(i.version, i.variant) for i in ids} == {(4, uuid.RFC_4122)}
    assert len(set(ids)) == len(ids)


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    """The buffer is emptied in the child at fork: the child's next id is not the
    parent's next one (from the same bytes)."""
    uuids.uuid4()  # the buffer holds bytes for the next ids
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, uuids.uuid4().bytes)
        os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.waitpid(pid, 0)
    os.close(read)

    assert child != uuids.uuid4().bytes
