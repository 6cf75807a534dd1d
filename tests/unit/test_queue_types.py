"""LEDGER_QUEUE_TYPE's queues (shared/bus/queue_types.py): names and arguments."""

from __future__ import annotations

from projections.registry import QUEUES
from shared.bus import webhook_queue
from shared.bus.partitions import queue_names
from shared.bus.queue_types import other_type, queue_arguments, typed_name
from shared.config import load_settings


def test_quorum_queues_have_names_of_their_own_and_classic_ones_keep_theirs() -> None:
    """Given each type, the projectors' partition queues and the webhook queue are
    named apart (a queue cannot change type in place), the classic ones as before."""
    quorum = typed_name(QUEUES, "quorum")
    assert queue_names("p.", typed_name(QUEUES, "classic"), 2) == [
        "p.read-models.0",
        "p.read-models.1",
    ]
    assert queue_names("p.", quorum, 2) == [
        "p.read-models-quorum.0",
        "p.read-models-quorum.1",
    ]
    assert webhook_queue.queue_name("x", "classic") == "x.webhooks"
    assert webhook_queue.queue_name("x", "quorum") == "x.webhooks-quorum"


def test_a_quorum_queue_is_declared_with_its_type_and_a_single_active_consumer() -> (
    None
):
    """Given each type, the declare's arguments: the type (quorum only) and a single
    active consumer, nothing else (no TTL, length limit or priority)."""
    assert queue_arguments("classic") == {"x-single-active-consumer": True}
    assert queue_arguments("quorum") == {
        "x-single-active-consumer": True,
        "x-queue-type": "quorum",
    }


def test_the_setting_defaults_to_classic_and_a_switch_comes_from_the_other() -> None:
    """Given no variable the type is classic; LEDGER_QUEUE_TYPE=quorum is read; the
    old queues of a switch are the other type's."""
    assert load_settings({}).queue_type == "classic"
    assert load_settings({"LEDGER_QUEUE_TYPE": "quorum"}).queue_type == "quorum"
    assert (other_type("classic"), other_type("quorum")) == ("quorum", "classic")
