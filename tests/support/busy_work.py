"""A job that keeps a parse worker busy forever, for the test that the worker dies
with the API process (it is imported by the worker, so it lives in a module)."""

from __future__ import annotations

import os
from pathlib import Path


def spin(payload: bytes) -> bytes:
    """Write this worker's pid to the path in `payload`, then burn CPU until killed."""
    Path(payload.decode()).write_text(str(os.getpid()))
    count = 0
    while True:
        count += 1
