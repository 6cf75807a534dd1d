"""Random (version 4) UUIDs, and random bytes, from the operating system's random
bytes, fetched for many at a time.

`uuid.uuid4()` asks the kernel for 16 bytes for each id (a getrandom system call):
about 3.5% of the API's CPU at concurrency 64, where a posting takes two (its
request id and its event id). These are the same bytes from the same source, fetched
BATCH ids at a time. A forked child never reuses its parent's bytes (the buffer is
emptied in the child at fork), and threads take disjoint slices (a lock).
"""

from __future__ import annotations

import os
import threading
import uuid

BATCH = 256
_SIZE = 16


class _RandomBytes:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0

    def take(self, size: int = _SIZE) -> bytes:
        with self._lock:
            if self._offset + size > len(self._buffer):
                self._buffer, self._offset = os.urandom(max(size, _SIZE * BATCH)), 0
            start = self._offset
            self._offset += size
            return self._buffer[start : start + size]

    def forget(self) -> None:
        self._buffer, self._offset = b"", 0
        self._lock = threading.Lock()


_random = _RandomBytes()
os.register_at_fork(after_in_child=_random.forget)


# A UUID as str(uuid) writes it (lower-case hex), for routes that take one.
PATTERN = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def uuid4() -> uuid.UUID:
    """A random UUID, as uuid.uuid4() makes one."""
    return uuid.UUID(bytes=_random.take(), version=4)


def random_bytes(size: int) -> bytes:
    """`size` random bytes from the same batches (keys and nonces:
    shared/personal_data.py, where an import asks for three per client)."""
    return _random.take(size)
