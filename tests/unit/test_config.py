"""Settings from the environment: the workers' probe port (LEDGER_HEALTH_PORT)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.config import _ENVIRONMENT, Settings, SettingsError, load_settings


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


# Each value the service cannot run with, and the one line that refuses it.
BAD_VALUES: list[tuple[dict[str, str], str]] = [
    (
        {"LEDGER_HTTP_PORT": "eighty"},
        "LEDGER_HTTP_PORT='eighty' is not a whole number",
    ),
    ({"LEDGER_HTTP_PORT": "0"}, "LEDGER_HTTP_PORT=0 is out of range (1 to 65535)"),
    (
        {"LEDGER_HTTP_PORT": "70000"},
        "LEDGER_HTTP_PORT=70000 is out of range (1 to 65535)",
    ),
    (
        {"LEDGER_READ_YOUR_WRITES_TIMEOUT_S": "-1"},
        "LEDGER_READ_YOUR_WRITES_TIMEOUT_S=-1.0 must be a number of seconds, 0 or more",
    ),
    (
        {"LEDGER_READ_YOUR_WRITES_TIMEOUT_S": "soon"},
        "LEDGER_READ_YOUR_WRITES_TIMEOUT_S='soon' is not a number",
    ),
    (
        {"LEDGER_BATCH_WINDOW_S": "inf"},
        "LEDGER_BATCH_WINDOW_S=inf must be a number of seconds, 0 or more",
    ),
    (
        {"LEDGER_READINESS_LAG_MAX_S": "0"},
        "LEDGER_READINESS_LAG_MAX_S=0.0 must be a number of seconds above 0",
    ),
    (
        {"LEDGER_CHECKPOINT_INTERVAL_S": "nan"},
        "LEDGER_CHECKPOINT_INTERVAL_S=nan must be a number of seconds above 0",
    ),
    ({"LEDGER_BATCH_SIZE_MAX": "0"}, "LEDGER_BATCH_SIZE_MAX=0 must be at least 1"),
    (
        {"LEDGER_BATCH_SIZE_MAX": "1.5"},
        "LEDGER_BATCH_SIZE_MAX='1.5' is not a whole number",
    ),
    (
        {"LEDGER_RELAY_BATCH_SIZE_MAX": "-5"},
        "LEDGER_RELAY_BATCH_SIZE_MAX=-5 must be at least 1",
    ),
    (
        {"LEDGER_PROJECTOR_BATCH_SIZE_MAX": "0"},
        "LEDGER_PROJECTOR_BATCH_SIZE_MAX=0 must be at least 1",
    ),
    (
        {"LEDGER_DATABASE_URL": "mysql://ledger@127.0.0.1/ledger"},
        "LEDGER_DATABASE_URL='mysql://ledger@127.0.0.1/ledger' is not a URL of the"
        " form postgresql://user@host:port/...",
    ),
    (
        {"LEDGER_ADMIN_DATABASE_URL": "postgresql://postgres:s3cret@db:54x2/ledger"},
        "LEDGER_ADMIN_DATABASE_URL='postgresql://postgres:***@db:54x2/ledger'"
        " is not a URL of the form postgresql://user@host:port/...",
    ),
    (
        {"LEDGER_AMQP_URL": "http://guest:guest@127.0.0.1:5672/"},
        "LEDGER_AMQP_URL='http://guest:***@127.0.0.1:5672/' is not a URL of the"
        " form amqp://user@host:port/...",
    ),
    (
        {"LEDGER_AMQP_URL": "127.0.0.1:5672"},
        "LEDGER_AMQP_URL='127.0.0.1:5672' is not a URL of the form"
        " amqp://user@host:port/...",
    ),
    (
        {"LEDGER_HTTP_BODY_TIMEOUT_S": "0"},
        "LEDGER_HTTP_BODY_TIMEOUT_S=0.0 must be a number of seconds above 0",
    ),
    (
        {"LEDGER_HTTP_SEND_TIMEOUT_S": "0"},
        "LEDGER_HTTP_SEND_TIMEOUT_S=0.0 must be a number of seconds above 0",
    ),
    (
        {"LEDGER_HTTP_CONNECTIONS_MAX": "0"},
        "LEDGER_HTTP_CONNECTIONS_MAX=0 must be at least 1",
    ),
    (
        {"LEDGER_METRICS_BACKLOG_INTERVAL_S": "-1"},
        "LEDGER_METRICS_BACKLOG_INTERVAL_S=-1.0 must be a number of seconds, 0 or more",
    ),
    (
        {"LEDGER_LOG_LEVEL": "LOUD"},
        "LEDGER_LOG_LEVEL='LOUD' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
    ),
    (
        {"LEDGER_LOG_FORMAT": "xml"},
        "LEDGER_LOG_FORMAT='xml' is not one of auto, json, text",
    ),
    (
        {"LEDGER_EVENT_LOOP": "trio"},
        "LEDGER_EVENT_LOOP='trio' is not one of uvloop, asyncio",
    ),
    (
        {"LEDGER_QUEUE_TYPE": "stream"},
        "LEDGER_QUEUE_TYPE='stream' is not one of classic, quorum",
    ),
]


@pytest.mark.parametrize(("variables", "message"), BAD_VALUES)
def test_a_bad_value_is_refused_with_one_line_naming_it(
    variables: dict[str, str], message: str
) -> None:
    """Given a value the service cannot run with, loading the settings fails with one
    line naming the variable, its value (never a password) and what it must be."""
    with pytest.raises(SettingsError) as refused:
        load_settings(variables)
    assert str(refused.value) == message
    assert "\n" not in str(refused.value)


def test_every_variable_is_read_and_every_default_is_valid() -> None:
    """Given every variable set to a good value, each lands in its setting; given
    none, the defaults load."""
    assert load_settings({}) == Settings()
    settings = load_settings(
        {
            "LEDGER_DATABASE_URL": "postgresql://app@db:5432/ledger",
            "LEDGER_ADMIN_DATABASE_URL": "postgres://admin:pw@db/ledger",
            "LEDGER_AMQP_URL": "amqps://user:pw@broker:5671/vhost",
            "LEDGER_EXCHANGE": "events",
            "LEDGER_QUEUE_PREFIX": "q.",
            "LEDGER_HTTP_HOST": "0.0.0.0",
            "LEDGER_HTTP_PORT": "9000",
            "LEDGER_HEALTH_PORT": "9001",
            "LEDGER_HMAC_KEY": "k" * 32,
            "LEDGER_READ_YOUR_WRITES_TIMEOUT_S": "0",
            "LEDGER_READINESS_LAG_MAX_S": "60",
            "LEDGER_BATCH_WINDOW_S": "0.01",
            "LEDGER_BATCH_SIZE_MAX": "1",
            "LEDGER_CHECKPOINT_INTERVAL_S": "2.5",
            "LEDGER_RELAY_BATCH_SIZE_MAX": "100",
            "LEDGER_PROJECTOR_BATCH_SIZE_MAX": "200",
            "LEDGER_HTTP_BODY_TIMEOUT_S": "1.5",
            "LEDGER_HTTP_CONNECTIONS_MAX": "8",
            "LEDGER_METRICS_BACKLOG_INTERVAL_S": "0",
            "LEDGER_LOG_LEVEL": "debug",
            "LEDGER_LOG_FORMAT": "json",
        }
    )
    assert settings == Settings(
        database_url="postgresql://app@db:5432/ledger",
        admin_database_url="postgres://admin:pw@db/ledger",
        amqp_url="amqps://user:pw@broker:5671/vhost",
        exchange="events",
        queue_prefix="q.",
        http_host="0.0.0.0",
        http_port=9000,
        health_port=9001,
        hmac_key="k" * 32,
        read_your_writes_timeout_s=0.0,
        readiness_lag_max_s=60.0,
        batch_window_s=0.01,
        batch_size_max=1,
        checkpoint_interval_s=2.5,
        relay_batch_size_max=100,
        projector_batch_size_max=200,
        http_body_timeout_s=1.5,
        http_connections_max=8,
        metrics_backlog_interval_s=0.0,
        log_level="debug",
        log_format="json",
    )


def test_a_socket_directory_stands_for_a_database_host() -> None:
    """Given a PostgreSQL URL with its host in the query (a Unix socket), it loads."""
    url = "postgresql:///ledger?host=/var/run/postgresql"
    assert load_settings({"LEDGER_DATABASE_URL": url}).database_url == url


def test_the_readme_documents_every_variable_with_its_default() -> None:
    """Given the README's configuration table, every variable the settings read has
    a row, and the row shows the setting's default."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = {
        name: line.split("|")[2]
        for line in section.splitlines()
        if line.startswith("| `LEDGER_")
        for name in re.findall(r"`(LEDGER_[A-Z_]+)`", line.split("|")[1])
    }
    assert sorted(rows) == sorted(_ENVIRONMENT)
    defaults = Settings()
    for name, (field, _) in _ENVIRONMENT.items():
        if field in ("database_url", "admin_database_url", "amqp_url", "hmac_key"):
            continue  # the URLs are checked by eye; the key is described, not shown
        if field in (
            "hmac_key_file",
            "hmac_previous_keys",
            "master_key",
            "master_key_file",
            "master_previous_keys",
            "test_clock_start",
            "read_database_urls",
        ):
            assert "unset" in rows[name], (name, rows[name])  # empty: shown as unset
            continue
        default = getattr(defaults, field)
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        assert f"`{shown}`" in rows[name], (name, rows[name])


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"LEDGER_IMPORT_WORKERS": "0"}, "LEDGER_IMPORT_WORKERS=0 must be at least 1"),
        ({"LEDGER_IMPORT_CPU_S": "0"}, "LEDGER_IMPORT_CPU_S=0 must be at least 1"),
        (
            {"LEDGER_IMPORT_MEMORY_MIB": "-5"},
            "LEDGER_IMPORT_MEMORY_MIB=-5 must be at least 1",
        ),
        (
            {"LEDGER_IMPORT_TIMEOUT_S": "0"},
            "LEDGER_IMPORT_TIMEOUT_S=0.0 must be a number of seconds above 0",
        ),
        (
            {"LEDGER_IMPORT_BLANK_ROWS_MAX": "0"},
            "LEDGER_IMPORT_BLANK_ROWS_MAX=0 must be at least 1",
        ),
        (
            {"LEDGER_IMPORT_SHARED_STRINGS_MAX": "many"},
            "LEDGER_IMPORT_SHARED_STRINGS_MAX='many' is not a whole number",
        ),
    ],
)
def test_import_limits_that_cannot_work_are_refused(
    variables: dict[str, str], message: str
) -> None:
    """Given a spreadsheet worker count, limit or sheet bound below 1 (or not a
    number), the process refuses to start with one line naming it."""
    with pytest.raises(SettingsError) as refused:
        load_settings(variables)
    assert str(refused.value) == message


def test_import_limits_are_read_from_the_environment() -> None:
    """Given every import variable, Settings holds each value with its type."""
    settings = load_settings(
        {
            "LEDGER_IMPORT_WORKERS": "3",
            "LEDGER_IMPORT_CPU_S": "30",
            "LEDGER_IMPORT_MEMORY_MIB": "512",
            "LEDGER_IMPORT_TIMEOUT_S": "45.5",
            "LEDGER_IMPORT_BLANK_ROWS_MAX": "10",
            "LEDGER_IMPORT_SHARED_STRINGS_MAX": "20",
        }
    )
    assert (
        settings.import_workers,
        settings.import_cpu_s,
        settings.import_memory_mib,
        settings.import_timeout_s,
        settings.import_blank_rows_max,
        settings.import_shared_strings_max,
    ) == (3, 30, 512, 45.5, 10, 20)
