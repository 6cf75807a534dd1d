"""What each setting must be, checked once at start (shared/config.load_settings).

A process with a bad setting refuses to start with one line naming the variable, the
value it was given and what it must be, instead of failing later, deep in a request
or a worker loop, with a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from shared.clock import parse_instant
from shared.keyring import previous_keys, weakness

if TYPE_CHECKING:
    from shared.config import Settings

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("auto", "json", "text")
EVENT_LOOPS = ("uvloop", "asyncio")
QUEUE_TYPES = ("classic", "quorum")  # shared/bus/queue_types.py
POSTGRES_SCHEMES = ("postgresql", "postgres")
AMQP_SCHEMES = ("amqp", "amqps")

_URLS: list[tuple[str, tuple[str, ...]]] = [
    ("database_url", POSTGRES_SCHEMES),
    ("admin_database_url", POSTGRES_SCHEMES),
    ("amqp_url", AMQP_SCHEMES),
]
_AT_LEAST_ONE = [
    "batch_size_max",
    "batch_window_from",
    "relay_batch_size_max",
    "projector_batch_size_max",
    "http_connections_max",
    "import_workers",
    "import_cpu_s",
    "import_memory_mib",
    "import_blank_rows_max",
    "import_shared_strings_max",
    "key_requests_burst",
    "auth_failures_burst",
    "export_per_bid_burst",
    "expensive_work_per_business_max",
    "report_work_mem_mib",
    "monitors_per_business_max",
    "monitor_poll_ms",
    "rate_table_entries_max",
    "api_pool_size_max",
    "fold_processes",
    "webhook_endpoints_max",
    "webhook_patterns_max",
    "webhook_response_bytes_max",
    "webhook_failures_max",
    "webhook_senders",
    "replica_lag_max_ms",
    "replica_poll_ms",
    "replica_pool_size_max",
    "replica_statement_timeout_ms",
]
# Ten years: the delivery log's retention fits PostgreSQL's interval many times over.
WEBHOOK_RETENTION_DAYS_MAX = 3650
# PostgreSQL's largest work_mem, 2,147,483,647 kB, in MiB.
REPORT_WORK_MEM_MIB_MAX = 2_097_151
_POSITIVE_SECONDS = [
    "readiness_lag_max_s",
    "checkpoint_interval_s",
    "http_body_timeout_s",
    "http_send_timeout_s",
    "import_timeout_s",
    "pool_acquire_timeout_s",
    "webhook_timeout_s",
    "webhook_retry_base_s",
    "webhook_retry_cap_s",
    "webhook_retry_horizon_s",
    "webhook_poll_interval_s",
]
# Rates (per second) a token bucket refills at: finite and above 0.
_RATES = ["key_requests_per_s", "auth_failures_per_s", "export_per_bid_per_s"]
_SECONDS = [
    "read_your_writes_timeout_s",
    "batch_window_s",
    "metrics_backlog_interval_s",
]


def problems(settings: Settings, variable_of: Callable[[str], str]) -> Iterator[str]:
    """One line per setting that is wrong, in the order of the checks."""
    yield from _url_problems(settings, variable_of)
    yield from _number_problems(settings, variable_of)
    yield from _keyring_problems(settings)
    yield from _replica_problems(settings)
    if not 0 < settings.http_port < 65536:
        yield f"LEDGER_HTTP_PORT={settings.http_port} is out of range (1 to 65535)"
    if settings.report_work_mem_mib > REPORT_WORK_MEM_MIB_MAX:
        yield (
            f"LEDGER_REPORT_WORK_MEM_MIB={settings.report_work_mem_mib} is more than"
            f" PostgreSQL's work_mem may be ({REPORT_WORK_MEM_MIB_MAX})"
        )
    if not 0 <= settings.health_port < 65536:
        yield (
            f"LEDGER_HEALTH_PORT={settings.health_port} is out of range "
            "(0 to 65535; 0 serves nothing)"
        )
    if not 1 <= settings.webhook_retention_days <= WEBHOOK_RETENTION_DAYS_MAX:
        yield (
            f"LEDGER_WEBHOOK_RETENTION_DAYS={settings.webhook_retention_days} is out"
            f" of range (1 to {WEBHOOK_RETENTION_DAYS_MAX} days)"
        )
    if settings.webhook_allow_private_addresses not in (0, 1):
        yield (
            "LEDGER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES="
            f"{settings.webhook_allow_private_addresses} is not 0 (refuse) or 1 (allow)"
        )
    if settings.log_level.upper() not in LOG_LEVELS:
        yield (
            f"LEDGER_LOG_LEVEL={settings.log_level!r} is not one of "
            + ", ".join(LOG_LEVELS)
        )
    start = settings.test_clock_start
    if start != "" and parse_instant(start) is None:
        yield (
            f"LEDGER_TEST_CLOCK_START={start!r} is not an RFC 3339 timestamp with an"
            " offset (2030-01-01T23:59:59.9Z), or empty for the real time"
        )
    if settings.log_format not in LOG_FORMATS:
        yield (
            f"LEDGER_LOG_FORMAT={settings.log_format!r} is not one of "
            + ", ".join(LOG_FORMATS)
        )
    if settings.queue_type not in QUEUE_TYPES:
        yield (
            f"LEDGER_QUEUE_TYPE={settings.queue_type!r} is not one of "
            + ", ".join(QUEUE_TYPES)
        )
    if settings.event_loop not in EVENT_LOOPS:
        yield (
            f"LEDGER_EVENT_LOOP={settings.event_loop!r} is not one of "
            + ", ".join(EVENT_LOOPS)
        )


def _number_problems(
    settings: Settings, variable_of: Callable[[str], str]
) -> Iterator[str]:
    for field in _AT_LEAST_ONE:
        value = getattr(settings, field)
        if value < 1:
            yield f"{variable_of(field)}={value} must be at least 1"
    for field in _POSITIVE_SECONDS:
        value = getattr(settings, field)
        if not (math.isfinite(value) and value > 0):
            yield f"{variable_of(field)}={value} must be a number of seconds above 0"
    for field in _SECONDS:
        value = getattr(settings, field)
        if not (math.isfinite(value) and value >= 0):
            yield f"{variable_of(field)}={value} must be a number of seconds, 0 or more"
    for field in _RATES:
        value = getattr(settings, field)
        if not (math.isfinite(value) and value > 0):
            yield f"{variable_of(field)}={value} must be a number per second above 0"


# A view of the replica rotation is trusted for this many polls
# (services/http/replica_rotation.VIEW_POLLS).
REPLICA_VIEW_POLLS = 3


def _replica_problems(settings: Settings) -> Iterator[str]:
    """With replicas, a command whose replica lags is answered once that replica is
    out: LEDGER_REPLICA_LAG_MAX_MS, then a view's lifetime (3 polls) later. A wait
    for read-your-writes shorter than that would answer every such command 202 (0,
    which answers every command 202 at once, is left alone)."""
    if settings.read_your_writes_timeout_s == 0:
        return
    if not read_urls(settings.read_database_urls):
        return
    needed_ms = settings.replica_lag_max_ms + REPLICA_VIEW_POLLS * (
        settings.replica_poll_ms
    )
    timeout_ms = settings.read_your_writes_timeout_s * 1000
    if needed_ms >= timeout_ms:
        yield (
            f"LEDGER_REPLICA_LAG_MAX_MS={settings.replica_lag_max_ms} plus 3 x"
            f" LEDGER_REPLICA_POLL_MS={settings.replica_poll_ms} ({needed_ms} ms)"
            " must be less than LEDGER_READ_YOUR_WRITES_TIMEOUT_S="
            f"{settings.read_your_writes_timeout_s:g} ({timeout_ms:g} ms): a"
            " command whose replica lags would never be answered 201"
        )


def _url_problems(
    settings: Settings, variable_of: Callable[[str], str]
) -> Iterator[str]:
    for field, schemes in _URLS:
        url = getattr(settings, field)
        if not _url_is_valid(url, schemes):
            safe = redact(url)
            yield (
                f"{variable_of(field)}={safe!r} is not a URL of the form "
                f"{schemes[0]}://user@host:port/..."
            )
    for url in read_urls(settings.read_database_urls):
        if not _url_is_valid(url, POSTGRES_SCHEMES):
            yield (
                f"LEDGER_READ_DATABASE_URLS lists {redact(url)!r}, not a URL of the"
                f" form {POSTGRES_SCHEMES[0]}://user@host:port/..."
            )


def _keyring_problems(settings: Settings) -> Iterator[str]:
    """A known key may verify only what it hashed before key ids existed, so listing
    one needs the bound that says where that ends (shared/keyring.py, README Keys).
    Only why a key is refused is said, never the key."""
    bound = settings.hmac_legacy_position_max
    if bound < 0:
        yield f"LEDGER_HMAC_LEGACY_POSITION_MAX={bound} must be 0 (no bound) or more"
    known = [key for key in previous_keys(settings.hmac_previous_keys) if weakness(key)]
    if known and bound == 0:
        yield (
            f"LEDGER_HMAC_PREVIOUS_KEYS lists {len(known)} weak key(s) (a public, "
            "placeholder or short one): set LEDGER_HMAC_LEGACY_POSITION_MAX to the "
            "last position written before key ids, so it verifies nothing newer"
        )


def read_urls(text: str) -> list[str]:
    """LEDGER_READ_DATABASE_URLS's URLs: comma-separated, blanks around them ignored."""
    return [url.strip() for url in text.split(",") if url.strip()]


def _url_is_valid(url: str, schemes: tuple[str, ...]) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        return False
    # A socket directory in the query (`?host=/var/run/postgresql`) stands for a host.
    has_host = bool(parts.hostname) or "host=" in parts.query
    return parts.scheme in schemes and has_host


def redact(url: str) -> str:
    """The URL without its password, fit for a message or a log line."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{netloc[2]}").geturl()
