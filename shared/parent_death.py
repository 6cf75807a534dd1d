"""A child process that must not outlive its parent asks Linux for SIGKILL when the
parent dies (`prctl(PR_SET_PDEATHSIG)`), which works even while the child is busy: a
signal handler or an event loop would wait for it. Used by `ledger run`'s children,
the import's parse workers and the API's fold workers; each decides what to do where
the call cannot be had."""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def kill_me_with_parent() -> bool:
    """Ask for SIGKILL when the parent dies; False where that cannot be had (not
    Linux, or prctl refused). The caller checks afterwards that its parent is still
    the one it expects: a parent that died before the call is not covered."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)) == 0
    except (AttributeError, OSError):
        return False
