"""A COMMIT still being applied when its connection is cut: the appender must wait for
the transaction's outcome (`pg_xact_status`), not take "its events are not visible
yet" for "never written". The latter answered 503 for a write that then committed,
and, for a batch, re-decided and wrote each command a second time.

The COMMIT is held by a deferred constraint trigger that the test installs on this
test database's events table: at COMMIT it waits for an advisory lock the test holds.
The API reaches PostgreSQL through a proxy that closes the API's connection as soon
as the COMMIT is sent, keeping the server side open so the COMMIT goes on.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from urllib.parse import urlsplit

import asyncpg

from tests.e2e.api_processes import ApiProcesses
from tests.e2e.commit_cutter import CommitCutter
from tests.e2e.deadlines import wait_until
from tests.e2e.test_commit_unknown import (  # noqa: F401 (fixtures)
    _events_with_key,
    _keyed_create,
    _paused_command,
    api_processes,
    cutter,
    own,
)
from tests.support.environment import Environment

LOCK = 424242
HOLD_AT_COMMIT = f"""
CREATE FUNCTION test_hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({LOCK});
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER test_hold_commit AFTER INSERT ON events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_hold_commit();
"""
WAITING_DEADLINE_S = 30.0
# Long enough for the appender to have asked once and found the COMMIT in progress
# (the settling loop keeps asking for about 5 s).
STILL_IN_PROGRESS_S = 0.5


async def test_a_commit_still_in_progress_when_cut_is_waited_for_and_answered_once(
    own: Environment,  # noqa: F811
    api_processes: ApiProcesses,  # noqa: F811
    cutter: CommitCutter,  # noqa: F811
) -> None:
    """The API's connection is cut right after it sends COMMIT, while the COMMIT waits
    at the test's lock; the lock is let go only after the API has had time to ask.
    The answer is the command's own 202 (not a 503), over exactly one event, and the
    keyed retry replays it byte for byte."""
    admin = await asyncpg.connect(own.admin_url)
    try:
        await admin.execute(HOLD_AT_COMMIT)
        port = await cutter.start()
        parts = urlsplit(own.settings.database_url)
        through_proxy = parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}")
        key = str(uuid.uuid4())
        api, api_key, pending = await _paused_command(
            own, api_processes, key, {"LEDGER_DATABASE_URL": through_proxy.geturl()}
        )
        await admin.execute("SELECT pg_advisory_lock($1)", LOCK)
        cutter.arm(at_send=True)
        api.release()
        await asyncio.wait_for(cutter.client_cut.wait(), WAITING_DEADLINE_S)

        async def commit_waiting() -> bool:
            return bool(
                await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                    " current_database() AND wait_event = 'advisory'"
                )
            )

        await wait_until(commit_waiting, WAITING_DEADLINE_S, "the COMMIT waiting")
        await asyncio.sleep(STILL_IN_PROGRESS_S)
        await admin.execute("SELECT pg_advisory_unlock($1)", LOCK)
        status, headers, raw = await pending
        assert (status, "Idempotent-Replayed" in headers) == (202, False), raw
        assert json.loads(raw)["business_name"] == "Cut at commit"
        assert await _events_with_key(own, key) == ["client.created"]
        replay_status, replay_headers, replay_raw = await _keyed_create(
            api, api_key, key
        )
        assert (replay_status, replay_headers["Idempotent-Replayed"]) == (202, "true")
        assert replay_raw == raw
        assert await _events_with_key(own, key) == ["client.created"]
    finally:
        await admin.execute("SELECT pg_advisory_unlock_all()")
        await admin.close()
