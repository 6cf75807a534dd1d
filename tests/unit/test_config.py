"""Settings from the environment: the workers' probe port (LEDGER_HEALTH_PORT)."""

from __future__ import annotations

import pytest

from shared.config import SettingsError, load_settings


def test_the_health_port_is_off_unless_set() -> None:
    """Given no LEDGER_HEALTH_PORT (or an empty one), no probe port is served."""
    assert load_settings({}).health_port == 0
    assert load_settings({"LEDGER_HEALTH_PORT": ""}).health_port == 0


def test_the_health_port_is_read_as_a_number() -> None:
    """Given LEDGER_HEALTH_PORT=8081, the workers answer probes on 8081."""
    assert load_settings({"LEDGER_HEALTH_PORT": "8081"}).health_port == 8081


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "65536",
            "LEDGER_HEALTH_PORT=65536 is out of range (0 to 65535; 0 serves nothing)",
        ),
        ("-1", "LEDGER_HEALTH_PORT=-1 is out of range (0 to 65535; 0 serves nothing)"),
        ("http", "LEDGER_HEALTH_PORT='http' is not a whole number"),
    ],
)
def test_a_health_port_that_cannot_be_one_is_refused(value: str, message: str) -> None:
    """Given a port out of range or not a number, the process refuses to start."""
    with pytest.raises(SettingsError) as refused:
        load_settings({"LEDGER_HEALTH_PORT": value})
    assert str(refused.value) == message
