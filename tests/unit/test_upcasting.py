"""The upcaster registry: steps chain from a stored version to the current one."""

from __future__ import annotations

import pytest

from shared.upcasting import Payload, Upcasters


def _renamed(payload: Payload) -> Payload:
    """Version 1 -> 2: `amount` became `amount_minor`."""
    upcast = dict(payload)
    upcast["amount_minor"] = upcast.pop("amount")
    return upcast


def _with_currency(payload: Payload) -> Payload:
    """Version 2 -> 3: a `currency` field appeared, GHS for every older event."""
    return {**payload, "currency": "GHS"}


def test_a_type_without_upcasters_is_at_version_one_and_read_unchanged() -> None:
    """Given no steps, a version-1 payload comes back as it is, at version 1."""
    registry = Upcasters()
    assert registry.current_version("transaction.posted") == 1
    assert not registry.needs_upcast("transaction.posted", 1)
    assert registry.upcast("transaction.posted", 1, {"amount": 5}) == (1, {"amount": 5})


def test_steps_chain_from_the_stored_version_to_the_current_one() -> None:
    """Given steps 1->2 and 2->3, a version-1 payload goes through both, a version-2
    payload through the second only, and a version-3 payload through none."""
    registry = Upcasters()
    registry.register("transaction.posted", 1, _renamed)
    registry.register("transaction.posted", 2, _with_currency)
    assert registry.current_version("transaction.posted") == 3
    assert registry.current_version("deposit.posted") == 1
    assert registry.upcast("transaction.posted", 1, {"amount": 5}) == (
        3,
        {"amount_minor": 5, "currency": "GHS"},
    )
    assert registry.upcast("transaction.posted", 2, {"amount_minor": 7}) == (
        3,
        {"amount_minor": 7, "currency": "GHS"},
    )
    assert registry.upcast("transaction.posted", 3, {"x": 1}) == (3, {"x": 1})
    assert registry.needs_upcast("transaction.posted", 2)
    assert not registry.needs_upcast("transaction.posted", 3)


def test_a_step_that_would_leave_a_gap_is_refused() -> None:
    """Registering 2->3 before 1->2 exists is a bug, caught at registration."""
    registry = Upcasters()
    with pytest.raises(AssertionError, match="gap"):
        registry.register("transaction.posted", 2, _with_currency)


def test_a_version_newer_than_the_code_is_refused() -> None:
    """An event written by newer code (version 2 where this code knows only 1) is
    never decoded as if it were version 1."""
    registry = Upcasters()
    with pytest.raises(AssertionError, match="unknown here"):
        registry.upcast("transaction.posted", 2, {"amount_minor": 5})


def test_unregistering_the_newest_step_brings_the_version_back() -> None:
    """A test that defined version 2 removes it again: the type is back at 1."""
    registry = Upcasters()
    registry.register("transaction.posted", 1, _renamed)
    registry.unregister("transaction.posted", 1)
    assert registry.current_version("transaction.posted") == 1
    assert not registry.needs_upcast("transaction.posted", 1)
