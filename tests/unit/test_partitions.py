"""Projection partitions: the slot of a business, the slots of a partition, the queue
names, the order a projector subscribes in, and the setting's bounds."""

from __future__ import annotations

import pytest

from projections.partition_claims import subscription_order
from shared.bus.partitions import business_slot, queue_names, slots_of
from shared.config import BUSINESS_SLOTS, SettingsError, load_settings


def test_a_business_slot_is_the_crc32_of_its_id_modulo_64() -> None:
    """Given business ids, the slots are crc32(str(id)) % 64: the same in every
    process and release (Python's hash() would differ per process)."""
    assert [business_slot(business_id) for business_id in (1, 2, 3, 42)] == [
        55,
        13,
        27,
        8,
    ]


@pytest.mark.parametrize("partitions", [1, 2, 3, 4, 7, 8, 64])
def test_every_slot_belongs_to_exactly_one_partition(partitions: int) -> None:
    """Given N partitions, their slot sets are disjoint and cover all 64 slots."""
    owned = [slots_of(partition, partitions) for partition in range(partitions)]
    assert sorted(slot for slots in owned for slot in slots) == list(
        range(BUSINESS_SLOTS)
    )


def test_one_partition_keeps_the_queue_name_a_projection_always_had() -> None:
    assert queue_names("ledger.projection.", "balances", 1) == [
        "ledger.projection.balances"
    ]
    assert queue_names("ledger.projection.", "balances", 3) == [
        "ledger.projection.balances.0",
        "ledger.projection.balances.1",
        "ledger.projection.balances.2",
    ]


def test_a_member_subscribes_to_its_own_partition_first_then_the_next_ones() -> None:
    assert subscription_order(2, 4) == [2, 3, 0, 1]
    assert subscription_order(None, 3) == [0, 1, 2]


@pytest.mark.parametrize("value", ["0", "65", "-1"])
def test_a_partition_count_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"LEDGER_PROJECTION_PARTITIONS": value})
    assert str(refused.value) == (
        f"LEDGER_PROJECTION_PARTITIONS={value} is not between 1 and 64"
    )


def test_the_partition_count_is_one_unless_set() -> None:
    assert load_settings({}).projection_partitions == 1
    assert (
        load_settings({"LEDGER_PROJECTION_PARTITIONS": "8"}).projection_partitions == 8
    )
