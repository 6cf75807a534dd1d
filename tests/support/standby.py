"""The local hot standby the read-replica tests read from (made by
deploy/local/ensure-standby.sh, which `make test` runs): its URL for a test database,
and pausing or stopping it for a test, always undone.

The test databases are created on the primary and reach the standby by replication,
under the same name. A test that needs the standby fails (never skips) when it does
not answer: CI makes it, so its absence is a broken setup, not an optional feature.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import asyncpg
import msgspec

from shared.config import Settings
from shared.store.postgres import with_database, with_user
from tests.support.environment import APP_ROLE, Environment

STANDBY_URL = os.environ.get(
    "LEDGER_TEST_STANDBY_URL", "postgresql://postgres@127.0.0.1:5433/postgres"
)
# Where deploy/local/ensure-standby.sh puts them, for the server's major version
# (learnt from the standby while it answers: require_standby, stop_standby).
STANDBY_DIR = "LEDGER_TEST_STANDBY_DIR", "/var/lib/postgresql/{major}/ledger-standby"
PG_CTL = "LEDGER_TEST_PG_CTL", "/usr/lib/postgresql/{major}/bin/pg_ctl"
_MAJOR: list[int] = []
MISSING = (
    "the hot standby at {url} does not answer ({error}): run "
    "`bash deploy/local/ensure-services.sh --with-standby` (`make test` does), or set "
    "LEDGER_TEST_STANDBY_URL"
)


async def require_standby() -> None:
    """Fail the test, saying how to get one, unless the standby answers as one."""
    try:
        conn = await asyncpg.connect(STANDBY_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        raise AssertionError(MISSING.format(url=STANDBY_URL, error=error)) from None
    try:
        assert await conn.fetchval("SELECT pg_is_in_recovery()"), (
            f"{STANDBY_URL} answers but is not a standby"
        )
        await _learn_major(conn)
    finally:
        await conn.close()


async def _learn_major(conn: asyncpg.Connection) -> None:
    if not _MAJOR:
        _MAJOR.append(int(await conn.fetchval("SHOW server_version_num")) // 10_000)


def standby_dir() -> str:
    """The standby's data directory (once require_standby has run)."""
    return _path(STANDBY_DIR)


def server_major() -> int:
    """The PostgreSQL major version of the standby, so of its primary (once
    require_standby has run)."""
    assert _MAJOR, "the standby's version is learnt from it first (require_standby)"
    return _MAJOR[0]


def _path(variable_and_default: tuple[str, str]) -> str:
    """The path from its LEDGER_TEST_* variable, else its default for the server's
    major version."""
    variable, default = variable_and_default
    assert _MAJOR, "the standby's version is learnt from it first (require_standby)"
    return os.environ.get(variable, default.format(major=_MAJOR[0]))


def replica_url(env: Environment) -> str:
    """The environment's database on the standby, as the service's role."""
    database = urlsplit(env.admin_url).path.lstrip("/")
    return with_user(with_database(STANDBY_URL, database), APP_ROLE)


def with_replica(env: Environment, **overrides: object) -> Settings:
    """The environment's settings with the standby as its one read replica (unless
    `overrides` lists others)."""
    fields = {"read_database_urls": replica_url(env), **overrides}
    return msgspec.structs.replace(env.settings, **fields)


async def _standby(statement: str) -> object:
    conn = await asyncpg.connect(STANDBY_URL, timeout=5)
    try:
        return await conn.fetchval(statement)
    finally:
        await conn.close()


@asynccontextmanager
async def paused_standby() -> AsyncIterator[None]:
    """The standby's replay paused (pg_wal_replay_pause) for the block, then resumed."""
    await _standby("SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        await _standby("SELECT pg_wal_replay_resume()")


@asynccontextmanager
async def apply_delay(milliseconds: int) -> AsyncIterator[None]:
    """The standby applies each commit `milliseconds` late (recovery_min_apply_delay,
    reloaded) for the block: a read there right after a write misses it unless the
    writer waited for the replay."""
    await _standby(f"ALTER SYSTEM SET recovery_min_apply_delay = '{milliseconds}ms'")
    await _standby("SELECT pg_reload_conf()")
    try:
        yield
    finally:
        await _standby("ALTER SYSTEM RESET recovery_min_apply_delay")
        await _standby("SELECT pg_reload_conf()")


async def standby_caught_up(primary: asyncpg.Pool) -> None:
    """Wait until the standby has replayed everything the primary had written when
    called (by WAL position)."""
    target = await primary.fetchval("SELECT pg_current_wal_flush_lsn() - '0/0'::pg_lsn")
    deadline = asyncio.get_running_loop().time() + 30
    while await _standby("SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn") < target:  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "the standby lags 30 s"
        await asyncio.sleep(0.01)


# A standby's shutdown first finishes the restartpoint it is writing, which took 94 s
# once under heavy WAL: the stop and start wait this long before failing the test.
PG_CTL_WAIT_S = 300


def _pg_ctl(*args: str) -> subprocess.CompletedProcess[bytes]:
    """pg_ctl on the standby's data directory, as the postgres OS user."""
    command = [_path(PG_CTL), "-D", _path(STANDBY_DIR), *args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(
        command, check=False, capture_output=True, timeout=PG_CTL_WAIT_S + 30
    )


async def stop_standby() -> None:
    """pg_ctl stop -m fast: sessions are ended at once, reads in flight fail; waits
    until it has stopped."""
    conn = await asyncpg.connect(STANDBY_URL, timeout=5)
    try:
        await _learn_major(conn)
    finally:
        await conn.close()
    done = await asyncio.to_thread(
        _pg_ctl, "-m", "fast", "-w", "-t", str(PG_CTL_WAIT_S), "stop"
    )
    assert done.returncode == 0, done.stderr


async def start_standby() -> None:
    """Start it (once a stop in progress has ended) and wait until it accepts
    connections."""
    deadline = asyncio.get_running_loop().time() + PG_CTL_WAIT_S
    while (await asyncio.to_thread(_pg_ctl, "status")).returncode == 0:
        assert asyncio.get_running_loop().time() < deadline, "the standby never stopped"
        await asyncio.sleep(0.2)  # still shutting down
    done = await asyncio.to_thread(
        _pg_ctl,
        "-l",
        f"{_path(STANDBY_DIR)}/standby.log",
        "-w",
        "-t",
        str(PG_CTL_WAIT_S),
        "start",
    )
    assert done.returncode == 0, done.stderr


@asynccontextmanager
async def standby_restored() -> AsyncIterator[None]:
    """Whatever the block did to the standby, it answers again afterwards, replaying."""
    try:
        yield
    finally:
        try:
            await _standby("SELECT pg_wal_replay_resume()")
        except (OSError, asyncpg.PostgresError):
            await start_standby()
            await _standby("SELECT pg_wal_replay_resume()")
