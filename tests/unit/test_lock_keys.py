"""Each advisory lock the service takes has a key of its own: the monitor process
once shared `ledger replay`'s key, and a running monitor made every replay answer
"another replay is running"."""

from __future__ import annotations

from projections.partition_claims import lock_key
from services.command_api.monitor_bodies import _ROOM_LOCK
from services.monitor.follower import MONITOR_LOCK, WRITERS_LOCK
from services.outbox_relay.relay import LEADER_LOCK
from services.replay.rebuild import REPLAY_LOCK
from shared.store.chain_checkpoints import CHECKPOINT_LOCK
from shared.store.postgres import _MIGRATION_LOCK


def test_every_single_key_advisory_lock_has_a_key_of_its_own() -> None:
    """The bigint keys (one per purpose; the writers' lock is migration 0011's) are
    all different; the monitors' per-business keys live above them, and the
    projectors' two-key claims are apart from each other."""
    keys = {
        "migration": _MIGRATION_LOCK,
        "relay leader": LEADER_LOCK,
        "checkpoints": CHECKPOINT_LOCK,
        "replay": REPLAY_LOCK,
        "writers": WRITERS_LOCK,
        "monitor": MONITOR_LOCK,
    }
    assert len(set(keys.values())) == len(keys), keys
    assert WRITERS_LOCK == 7_170_005  # the trigger's literal (migrations 0011, 0013)
    assert _ROOM_LOCK >> 32 not in keys.values()
    assert lock_key("member", "read-models") != lock_key("ready", "read-models")
