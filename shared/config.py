"""Settings for every process, read once from the environment by each `main()`."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from shared import setting_checks

PROJECTIONS = ("balances", "statements")
# Messages carry a business slot (crc32 of the business id modulo this); partition p
# takes the slots s with s % partitions == p, so there can be at most this many.
BUSINESS_SLOTS = 64
PARTITIONS_MAX = BUSINESS_SLOTS


class SettingsError(ValueError):
    """A setting has a value the service cannot start with."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = "postgresql://ledger_app@127.0.0.1:5432/ledger"
    admin_database_url: str = "postgresql://postgres@127.0.0.1:5432/ledger"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    exchange: str = "ledger.events"
    queue_prefix: str = "ledger.projection."
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Where `ledger relay` and `ledger projector` answer /healthz and /readyz for
    # container probes; 0 (the default, and always under `ledger run`) serves nothing.
    health_port: int = 0
    hmac_key: str = "dev-only-insecure-hmac-key"
    read_your_writes_timeout_s: float = 5.0
    readiness_lag_max_s: float = 30.0
    batch_window_s: float = 0.002
    batch_size_max: int = 500
    relay_batch_size_max: int = 2000  # bigger batches publish ~20-40% faster
    checkpoint_interval_s: float = 10.0
    projector_batch_size_max: int = 500
    # Queues per projection (shared/partitions.py): a business's events always go to
    # the same one, each is consumed by one projector at a time, so several projector
    # processes share a projection's work and every business stays in order.
    projection_partitions: int = 1
    # Part of the HTTP contract (413 above 1 MiB, in the README), not a deployment
    # setting: no environment variable changes it.
    body_size_max: int = 1024 * 1024
    # Logging: a level name, and `auto` (text on a terminal, JSON lines otherwise),
    # `json` or `text` (shared/logs.py).
    log_level: str = "INFO"
    log_format: str = "auto"
    # Fair use (shared/fair_use.py, README "Fair use"). Per API key: `make bench`
    # sends at most ~900 requests/s from its one key (64 at once, ~835 postings/s);
    # 3,000/s with a 6,000 burst leaves it more than three times that.
    key_requests_per_s: float = 3000.0
    key_requests_burst: int = 6000
    # Failed authentications per client address: past the burst, an address gets a
    # 429 (no key lookup) until its bucket refills.
    auth_failures_per_s: float = 10.0
    auth_failures_burst: int = 100
    # The key-less export, per business (bid).
    export_per_bid_per_s: float = 1.0
    export_per_bid_burst: int = 10
    # Imports, exports, audit verifies and as_of queries of one business at once.
    expensive_work_per_business_max: int = 4
    # Buckets kept per table (keys, addresses, bids); least recently used dropped.
    rate_table_entries_max: int = 10_000
    # The API process's PostgreSQL pool, and how long a request waits for one of its
    # connections before a 503 with Retry-After.
    api_pool_size_max: int = 20
    pool_acquire_timeout_s: float = 5.0
    # Worker processes folding events for audit verify and as_of (off the event loop).
    fold_processes: int = 2


# Environment variable -> (field, parser). Every setting has a documented default above.
_ENVIRONMENT: dict[str, tuple[str, type]] = {
    "LEDGER_DATABASE_URL": ("database_url", str),
    "LEDGER_ADMIN_DATABASE_URL": ("admin_database_url", str),
    "LEDGER_AMQP_URL": ("amqp_url", str),
    "LEDGER_EXCHANGE": ("exchange", str),
    "LEDGER_QUEUE_PREFIX": ("queue_prefix", str),
    "LEDGER_HTTP_HOST": ("http_host", str),
    "LEDGER_HTTP_PORT": ("http_port", int),
    "LEDGER_HEALTH_PORT": ("health_port", int),
    "LEDGER_HMAC_KEY": ("hmac_key", str),
    "LEDGER_READ_YOUR_WRITES_TIMEOUT_S": ("read_your_writes_timeout_s", float),
    "LEDGER_READINESS_LAG_MAX_S": ("readiness_lag_max_s", float),
    "LEDGER_BATCH_WINDOW_S": ("batch_window_s", float),
    "LEDGER_BATCH_SIZE_MAX": ("batch_size_max", int),
    "LEDGER_CHECKPOINT_INTERVAL_S": ("checkpoint_interval_s", float),
    "LEDGER_PROJECTION_PARTITIONS": ("projection_partitions", int),
    "LEDGER_RELAY_BATCH_SIZE_MAX": ("relay_batch_size_max", int),
    "LEDGER_PROJECTOR_BATCH_SIZE_MAX": ("projector_batch_size_max", int),
    "LEDGER_LOG_LEVEL": ("log_level", str),
    "LEDGER_LOG_FORMAT": ("log_format", str),
    "LEDGER_KEY_REQUESTS_PER_S": ("key_requests_per_s", float),
    "LEDGER_KEY_REQUESTS_BURST": ("key_requests_burst", int),
    "LEDGER_AUTH_FAILURES_PER_S": ("auth_failures_per_s", float),
    "LEDGER_AUTH_FAILURES_BURST": ("auth_failures_burst", int),
    "LEDGER_EXPORT_PER_BID_PER_S": ("export_per_bid_per_s", float),
    "LEDGER_EXPORT_PER_BID_BURST": ("export_per_bid_burst", int),
    "LEDGER_EXPENSIVE_WORK_PER_BUSINESS_MAX": ("expensive_work_per_business_max", int),
    "LEDGER_RATE_TABLE_ENTRIES_MAX": ("rate_table_entries_max", int),
    "LEDGER_API_POOL_SIZE_MAX": ("api_pool_size_max", int),
    "LEDGER_POOL_ACQUIRE_TIMEOUT_S": ("pool_acquire_timeout_s", float),
    "LEDGER_FOLD_PROCESSES": ("fold_processes", int),
}


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from environment variables; a bad value raises SettingsError
    with one line naming the variable, its value and what it must be."""
    values: dict[str, object] = {}
    for name, (field, parse) in _ENVIRONMENT.items():
        raw = environ.get(name)
        if raw is None or raw == "":
            continue
        try:
            values[field] = parse(raw.strip() if parse is not str else raw)
        except ValueError:
            kind = "whole number" if parse is int else "number"
            raise SettingsError(f"{name}={raw!r} is not a {kind}") from None
    settings = Settings(**values)  # type: ignore[arg-type]
    problem = next(setting_checks.problems(settings, _variable_of), None)
    if problem is not None:  # the first one: fixing it may change the others
        raise SettingsError(problem)
    if not 1 <= settings.projection_partitions <= PARTITIONS_MAX:
        raise SettingsError(
            f"LEDGER_PROJECTION_PARTITIONS={settings.projection_partitions}"
            f" is not between 1 and {PARTITIONS_MAX}"
        )
    return settings


def _variable_of(field: str) -> str:
    return next(name for name, (f, _) in _ENVIRONMENT.items() if f == field)
