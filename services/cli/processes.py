"""`ledger run`: start every process (N API processes, relay, projector, monitor,
webhooks) and keep them up; `ledger api` with several processes: the N API processes
alone (services/cli/api_processes.py says how many).

Each process is a child running `ledger <role>`; one that dies is restarted after a
short delay, alone: the other API processes go on serving the port meanwhile.
SIGINT (Ctrl-C) or SIGTERM stops them all with SIGTERM, then SIGKILL after a
deadline. A supervisor that dies without stopping them (SIGKILL, a crash) takes them
with it (exit_with_supervisor).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from shared.parent_death import kill_me_with_parent

log = logging.getLogger("ledger.supervisor")
STOP_DEADLINE_S = 15.0
PARENT_POLL_S = 1.0
SUPERVISOR_PID = "LEDGER_SUPERVISOR_PID"
RESTART_DELAY_S = 1.0
HEALTH_PORT = "LEDGER_HEALTH_PORT"
API_PROCESSES = "LEDGER_API_PROCESSES"
WORKERS = [["relay"], ["projector"], ["monitor"], ["webhooks"]]


def roles(api_processes: int = 1) -> list[list[str]]:
    """What `ledger run` starts: `api_processes` API processes and one of each
    worker."""
    return [["api"]] * api_processes + WORKERS


def _spawn(role: list[str], api_processes: int) -> subprocess.Popen[bytes]:
    # A session of its own: Ctrl-C in the terminal reaches only the supervisor, which
    # then stops each child with exactly one SIGTERM (a second signal would cut the
    # API's in-flight requests short instead of letting them finish).
    environment = {**os.environ, SUPERVISOR_PID: str(os.getpid())}
    # The workers' probe port is for one worker per container; here they would all
    # bind it and all but one fail.
    environment.pop(HEALTH_PORT, None)
    # Each API child serves (it never supervises in turn), on the shared port when
    # there are several (SO_REUSEPORT: services/http/listener.py).
    environment[API_PROCESSES] = str(api_processes)
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", *role],
        start_new_session=True,
        env=environment,
    )


def exit_with_supervisor() -> None:
    """In a child of `ledger run`: end when the supervisor is gone, even after a
    SIGKILL and even while busy, so that no orphan keeps the port, the queues or a
    CPU (an API child once parsed a spreadsheet for minutes after `make run` died).

    On Linux the kernel does it: PR_SET_PDEATHSIG sends this process SIGKILL the
    moment its parent dies, whatever the process is doing (a SIGTERM would wait for
    an event loop that may be busy). Its commands are atomic and its workers resume
    from their checkpoints, so nothing is lost that a crash would not lose. Where
    prctl is missing, a watchdog thread sends SIGTERM, then ends the process after
    STOP_DEADLINE_S if that was not enough."""
    supervisor = os.environ.get(SUPERVISOR_PID)
    if supervisor is None:
        return
    if kill_me_with_parent():
        if os.getppid() != int(supervisor):  # it died before the request was made
            os.kill(os.getpid(), signal.SIGKILL)
        return
    threading.Thread(
        target=_watch_parent,
        args=(int(supervisor),),
        name="supervisor-watch",
        daemon=True,
    ).start()


def _watch_parent(supervisor: int) -> None:
    while os.getppid() == supervisor:
        time.sleep(PARENT_POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(STOP_DEADLINE_S)  # still here: the main thread is stuck
    os._exit(1)


def supervise(children_roles: list[list[str]]) -> int:
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    api_processes = children_roles.count(["api"])
    children = {
        index: (role, _spawn(role, api_processes))
        for index, role in enumerate(children_roles)
    }
    while not stopping:
        time.sleep(0.2)
        for index, (role, child) in list(children.items()):
            if child.poll() is not None and not stopping:
                log.warning(
                    "%s exited (%d); restarting",
                    " ".join(role),
                    child.returncode,
                    extra={
                        "event": "process.restarting",
                        "role": " ".join(role),
                        "status": child.returncode,
                    },
                )
                time.sleep(RESTART_DELAY_S)
                children[index] = (role, _spawn(role, api_processes))
    return _stop_all(list(children.values()))


def _stop_all(children: list[tuple[list[str], subprocess.Popen[bytes]]]) -> int:
    """SIGTERM every child, wait for each; 0 only when every one finished its work
    and exited 0 by itself (1 when one failed or had to be killed)."""
    log.info("stopping", extra={"event": "process.stopping", "role": "run"})
    for _, child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_DEADLINE_S
    clean = True
    for role, child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.returncode != 0:
            log.error(
                "%s exited (%d) while stopping",
                " ".join(role),
                child.returncode,
                extra={
                    "event": "process.failed_to_stop",
                    "role": " ".join(role),
                    "status": child.returncode,
                },
            )
            clean = False
    return 0 if clean else 1
