"""How many API processes `ledger run` starts (services/cli/api_processes.py): what
was asked for when it fits, the default lowered until it fits, and a refusal naming
the figures when it does not; `ledger api` alone serves as one unless asked for more."""

from __future__ import annotations

import argparse

import pytest

from services.cli import api_processes, main
from services.cli.processes import SUPERVISOR_PID
from shared.config import Settings, SettingsError

SETTINGS = Settings()  # pools of 20, 2 fold workers: 24 a process; 16 for the workers


def test_an_asked_for_count_that_fits_is_started() -> None:
    assert api_processes.count(SETTINGS, 3, 97, workers=True) == 3  # 72 + 16 = 88


def test_the_setting_is_used_when_the_flag_is_absent() -> None:
    settings = Settings(api_processes=2)
    assert api_processes.count(settings, None, 97, workers=True) == 2


def test_the_flag_wins_over_the_setting() -> None:
    settings = Settings(api_processes=2)
    assert api_processes.count(settings, 1, 97, workers=True) == 1


def test_an_asked_for_count_that_does_not_fit_is_refused_with_the_figures() -> None:
    with pytest.raises(SettingsError) as refused:
        api_processes.count(SETTINGS, 4, 97, workers=True)  # 96 + 16 = 112
    assert str(refused.value).startswith(
        "4 API processes need up to 4 x 24 PostgreSQL connections"
        " (LEDGER_API_POOL_SIZE_MAX=20 + 2 + LEDGER_FOLD_PROCESSES=2) + 16 for the"
        " workers, 112 in all; the server allows 97"
    )


def test_the_default_is_half_the_cores_under_run_at_most_four_lowered_until_it_fits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(api_processes, "usable_cores", lambda: 16)
    assert api_processes.count(SETTINGS, None, 500, workers=True) == 4
    assert api_processes.count(SETTINGS, None, 97, workers=True) == 3
    monkeypatch.setattr(api_processes, "usable_cores", lambda: 8)
    assert api_processes.count(SETTINGS, None, 500, workers=True) == 4
    monkeypatch.setattr(api_processes, "usable_cores", lambda: 2)
    assert api_processes.count(SETTINGS, None, 97, workers=True) == 1
    monkeypatch.setattr(api_processes, "usable_cores", lambda: 1)
    assert api_processes.count(SETTINGS, None, 97, workers=True) == 1


def test_ledger_api_alone_defaults_to_one_whatever_its_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With LEDGER_API_PROCESSES unset, `ledger api` counts one on 2 cores and on 8:
    its cores say nothing of the CPU quota it was given."""
    monkeypatch.setattr(api_processes, "usable_cores", lambda: 2)
    assert api_processes.count(SETTINGS, None, 97, workers=False) == 1
    monkeypatch.setattr(api_processes, "usable_cores", lambda: 8)
    assert api_processes.count(SETTINGS, None, 500, workers=False) == 1


def test_ledger_api_alone_serves_itself_unless_more_than_one_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`ledger api` with LEDGER_API_PROCESSES unset (0) or 1 serves as one process, as
    it did before (no supervisor, no connection probe); 2 or more supervises them."""
    monkeypatch.delenv(SUPERVISOR_PID, raising=False)
    api = argparse.Namespace(command="api")
    supervises = [
        main._supervises_api(Settings(api_processes=n), api) for n in (0, 1, 2)
    ]
    assert supervises == [False, False, True]


def test_ledger_api_alone_counts_no_workers() -> None:
    assert api_processes.count(SETTINGS, 4, 97, workers=False) == 4  # 96


def test_no_room_for_even_one_is_refused() -> None:
    with pytest.raises(SettingsError):
        api_processes.count(SETTINGS, None, 30, workers=True)
