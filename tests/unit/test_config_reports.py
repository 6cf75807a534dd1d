"""The aged receivables report's setting (shared/config.py, setting_checks.py)."""

from __future__ import annotations

import pytest

from shared.config import SettingsError, load_settings


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "LEDGER_REPORT_WORK_MEM_MIB=0 must be at least 1"),
        (
            "2097152",
            "LEDGER_REPORT_WORK_MEM_MIB=2097152 is more than PostgreSQL's work_mem"
            " may be (2097151)",
        ),
    ],
)
def test_a_report_memory_postgresql_cannot_take_is_refused(
    value: str, message: str
) -> None:
    """Given a report memory below 1 MiB or above PostgreSQL's largest work_mem, the
    process refuses to start with one line naming it (not a 500 on every report)."""
    with pytest.raises(SettingsError) as refused:
        load_settings({"LEDGER_REPORT_WORK_MEM_MIB": value})
    assert str(refused.value) == message
    assert load_settings({"LEDGER_REPORT_WORK_MEM_MIB": "2097151"}).report_work_mem_mib
