"""LEDGER_QUEUE_TYPE: the RabbitMQ queue type of the projectors' and the webhook
worker's queues, `classic` (the default) or `quorum` (replicated with Raft over a
cluster's nodes; deploy/OPERATIONS.md, "RabbitMQ: quorum queues (tested on one node)").

A queue's type is fixed when it is declared: declaring it again with another type
fails (PRECONDITION_FAILED). So each type has queues of its own name, a quorum queue
being named as the classic one with QUORUM_SUFFIX, and switching the setting declares
new queues beside the old ones instead of failing. The relay binds the queues of its
setting's type before it publishes, and never unbinds the other type's: from then on
every frame reaches the new queues, and the old ones until they are gone. The first
projector (webhook worker) of the new type applies what the old queues hold, before
anything of the new ones, and deletes them (projections/legacy_queues.py,
services/webhooks/old_queue.py).

Both types are durable, never exclusive or auto-delete, and have a single active
consumer (x-single-active-consumer: RabbitMQ supports it on quorum queues since 3.8).
No other argument is set: no TTL, length limit or priority, so little differs
between the types in what the code relies on (persistent messages, publisher confirms,
mandatory returns, prefetch, ack and reject). But a quorum queue with
single-active-consumer refuses basic.get: old queues are emptied through a consumer
(shared/bus/old_queues.take_each).
"""

from __future__ import annotations

from typing import Literal

from pamqp.common import FieldTable

from shared.setting_checks import QUEUE_TYPES

QueueType = Literal["classic", "quorum"]
QUORUM_SUFFIX = "-quorum"


def queue_type_of(setting: str) -> QueueType:
    """The setting as a QueueType (shared/setting_checks.py has refused any other)."""
    assert setting in QUEUE_TYPES, setting
    return "quorum" if setting == "quorum" else "classic"


def other_type(queue_type: str) -> QueueType:
    """The type a switch of the setting comes from."""
    return "classic" if queue_type_of(queue_type) == "quorum" else "quorum"


def typed_name(name: str, queue_type: str) -> str:
    """A queue's name for its type: the classic one keeps the name it always had."""
    if queue_type_of(queue_type) == "quorum":
        return name + QUORUM_SUFFIX
    return name


def queue_arguments(queue_type: str) -> FieldTable:
    """The arguments a queue of the type is declared with (durable, besides)."""
    arguments: FieldTable = {"x-single-active-consumer": True}
    if queue_type_of(queue_type) == "quorum":
        arguments["x-queue-type"] = "quorum"
    return arguments
