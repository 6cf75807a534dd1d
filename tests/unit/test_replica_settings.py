"""The read replicas' settings: LEDGER_READ_DATABASE_URLS and the rotation's bounds."""

from __future__ import annotations

import pytest

from shared.config import Settings, SettingsError, load_settings
from shared.setting_checks import read_urls

BAD_VALUES: list[tuple[dict[str, str], str]] = [
    (
        {
            "LEDGER_READ_DATABASE_URLS": "postgresql://a@r1:5433/ledger,"
            " mysql://b:secret@r2/ledger"
        },
        "LEDGER_READ_DATABASE_URLS lists 'mysql://b:***@r2/ledger', not a URL of the"
        " form postgresql://user@host:port/...",
    ),
    (
        {"LEDGER_REPLICA_LAG_MAX_MS": "0"},
        "LEDGER_REPLICA_LAG_MAX_MS=0 must be at least 1",
    ),
    ({"LEDGER_REPLICA_POLL_MS": "0"}, "LEDGER_REPLICA_POLL_MS=0 must be at least 1"),
    (
        {"LEDGER_REPLICA_POOL_SIZE_MAX": "0"},
        "LEDGER_REPLICA_POOL_SIZE_MAX=0 must be at least 1",
    ),
    (
        {"LEDGER_REPLICA_STATEMENT_TIMEOUT_MS": "0"},
        "LEDGER_REPLICA_STATEMENT_TIMEOUT_MS=0 must be at least 1",
    ),
    (
        {
            "LEDGER_READ_DATABASE_URLS": "postgresql://a@r1:5433/ledger",
            "LEDGER_REPLICA_LAG_MAX_MS": "4000",
            "LEDGER_REPLICA_POLL_MS": "400",
        },
        "LEDGER_REPLICA_LAG_MAX_MS=4000 plus 3 x LEDGER_REPLICA_POLL_MS=400 (5200 ms)"
        " must be less than LEDGER_READ_YOUR_WRITES_TIMEOUT_S=5 (5000 ms): a command"
        " whose replica lags would never be answered 201",
    ),
]


@pytest.mark.parametrize(("variables", "message"), BAD_VALUES)
def test_a_bad_replica_setting_is_refused_with_one_line_naming_it(
    variables: dict[str, str], message: str
) -> None:
    """Given a replica setting the service cannot run with (a URL of another scheme
    in the list, its password hidden; a bound below 1), loading fails with one line."""
    with pytest.raises(SettingsError) as refused:
        load_settings(variables)
    assert str(refused.value) == message


def test_read_urls_are_split_on_commas_and_blanks_are_ignored() -> None:
    """Given LEDGER_READ_DATABASE_URLS with spaces and an empty item, the replicas'
    URLs are the non-empty items, trimmed, in order; unset, there are none."""
    settings = load_settings(
        {"LEDGER_READ_DATABASE_URLS": " postgresql://a@r1:5433/l ,, postgres://b@r2/l"}
    )
    assert read_urls(settings.read_database_urls) == [
        "postgresql://a@r1:5433/l",
        "postgres://b@r2/l",
    ]
    assert read_urls(Settings().read_database_urls) == []
    assert settings.replica_lag_max_ms == 1000
    assert load_settings({"LEDGER_REPLICA_POLL_MS": "20"}).replica_poll_ms == 20


def test_replica_bounds_that_fit_the_read_your_writes_wait_are_accepted() -> None:
    """Given replicas whose lag bound plus three polls is under the read-your-writes
    wait, or a wait of 0 (every command 202 at once), or no replicas, loading
    succeeds."""
    replica = {"LEDGER_READ_DATABASE_URLS": "postgresql://a@r1:5433/ledger"}
    fits = load_settings({**replica, "LEDGER_REPLICA_LAG_MAX_MS": "4699"})
    assert fits.replica_lag_max_ms == 4699
    no_wait = {"LEDGER_READ_YOUR_WRITES_TIMEOUT_S": "0"}
    assert load_settings({**replica, **no_wait}).read_your_writes_timeout_s == 0
    alone = load_settings({"LEDGER_REPLICA_LAG_MAX_MS": "9000"})
    assert alone.replica_lag_max_ms == 9000
    assert Settings().replica_statement_timeout_ms == 30_000
