"""Settings for every process, read once from the environment by each `main()`."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from shared import setting_checks
from shared.keyring import DEVELOPMENT_KEY

# Messages carry a business slot (crc32 of the business id modulo this); partition p
# takes the slots s with s % partitions == p, so there can be at most this many.
BUSINESS_SLOTS = 64
PARTITIONS_MAX = BUSINESS_SLOTS
# LEDGER_API_PROCESSES: at most this many when set (each process holds a pool).
API_PROCESSES_MAX = 64


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
    # API processes `ledger run` (and `ledger api`) start on the one port, each with
    # its own pool and appender (SO_REUSEPORT: services/cli/api_processes.py). 0, the
    # default: the cores this process may use, at most API_PROCESSES_DEFAULT_MAX, and
    # no more than PostgreSQL's max_connections has room for.
    api_processes: int = 0
    # Where `ledger relay` and `ledger projector` answer /healthz and /readyz for
    # container probes; 0 (the default, and always under `ledger run`) serves nothing.
    health_port: int = 0
    # The hash chain's key (shared/keyring.py). The default is the public development
    # key, which no process starts with: set LEDGER_HMAC_KEY or LEDGER_HMAC_KEY_FILE.
    hmac_key: str = DEVELOPMENT_KEY
    # A file holding the key (its surrounding whitespace ignored): read once at start
    # by resolve_key(), in place of LEDGER_HMAC_KEY (a container's mounted secret).
    hmac_key_file: str = ""
    # Keys the audit still verifies with, never signs with: comma-separated.
    hmac_previous_keys: str = ""
    # The last position written before key ids existed (0: no bound). Rows without a
    # key id above it are forged; required when a previous key is a known one.
    hmac_legacy_position_max: int = 0
    # The master key that wraps each client's key (shared/personal_data.py), and its
    # file (read once at start, like LEDGER_HMAC_KEY_FILE). Empty, the default: derived
    # from the hash chain's key under a label of its own. Previous master keys open
    # the client keys they wrapped until `ledger master-key rotate` re-wraps them:
    # comma-separated.
    master_key: str = ""
    master_key_file: str = ""
    master_previous_keys: str = ""
    read_your_writes_timeout_s: float = 5.0
    readiness_lag_max_s: float = 30.0
    # The group-commit window (services/command_api/appender.py): after a batch of
    # batch_window_from commands or more, the next gathers for batch_window_s.
    batch_window_s: float = 0.002
    batch_window_from: int = 4
    batch_size_max: int = 500
    relay_batch_size_max: int = 2000  # bigger batches publish ~20-40% faster
    checkpoint_interval_s: float = 10.0
    projector_batch_size_max: int = 500
    # The projectors' queues (shared/bus/partitions.py): a business's events always go
    # to the same one, each is consumed by one projector at a time, so several projector
    # processes share the work and every business stays in order.
    projection_partitions: int = 1
    # The projectors' and the webhook worker's queues: `classic` or `quorum`
    # (shared/bus/queue_types.py; switching it loses nothing: deploy/OPERATIONS.md).
    queue_type: str = "classic"
    # Part of the HTTP contract (413 above 1 MiB, in the README), not a deployment
    # setting: no environment variable changes it.
    body_size_max: int = 1024 * 1024
    # Slow clients (services/http/body_deadline.py, services/http/listener.py): a
    # request body must arrive whole within this many seconds of its headers (else
    # 408), and the API holds at most this many connections at once (more are refused
    # with 503).
    http_body_timeout_s: float = 60.0
    http_connections_max: int = 1000
    # A download (the export) whose client takes no piece of it for this many seconds
    # is cut (services/query_api/excel_export.py): a reader that stalls holds nothing.
    http_send_timeout_s: float = 60.0
    # /metrics reads the backlog gauges from the database at most this often; scrapes
    # in between show the last figures (services/http/metrics.py). 0 reads at every
    # scrape.
    metrics_backlog_interval_s: float = 5.0
    # Logging: a level name, and `auto` (text on a terminal, JSON lines otherwise),
    # `json` or `text` (services/cli/logs.py).
    log_level: str = "INFO"
    log_format: str = "auto"
    # The event loop of the serving processes (API, relay, projectors) and of replay
    # and audit: `uvloop` (libuv, about 10% less CPU per posting) or Python's own
    # `asyncio` (shared/worker/event_loop.py).
    event_loop: str = "uvloop"
    # Spreadsheet imports are parsed in worker processes with these bounds
    # (services/command_api/spreadsheets/parse_pool.py): at most `import_workers` at
    # once (one more
    # upload answers 503), each with CPU seconds, address space and wall-clock limits.
    import_workers: int = 2
    import_cpu_s: int = 60
    import_memory_mib: int = 1024
    import_timeout_s: float = 120.0
    # Blank rows (written or skipped) an imported sheet may hold before its last row,
    # and shared strings its workbook may declare (excel_import.SheetBounds).
    import_blank_rows_max: int = 100_000
    import_shared_strings_max: int = 1_000_000
    # Fair use (services/http/fair_use.py, README "Fair use"). Per API key: `make bench`
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
    # Memory one aged receivables report may hash its clients' sums in (PostgreSQL's
    # work_mem for that statement); past it PostgreSQL sorts on disk, slower.
    report_work_mem_mib: int = 64
    # Balance monitors one business may have; how often the monitor process looks
    # for new events (at once again while it is behind).
    monitors_per_business_max: int = 100
    monitor_poll_ms: int = 200
    # Buckets kept per table (keys, addresses, bids); least recently used dropped.
    rate_table_entries_max: int = 10_000
    # The API process's PostgreSQL pool, and how long a request waits for one of its
    # connections before a 503 with Retry-After.
    api_pool_size_max: int = 20
    pool_acquire_timeout_s: float = 5.0
    # Read replicas (services/http/replica_rotation.py, README "Read replicas"): hot
    # standbys the query routes read from, comma-separated (empty: the primary serves
    # everything). A command waits until each replica in rotation has replayed it, at
    # most replica_lag_max_ms before that replica is taken out; each API process
    # polls them every replica_poll_ms, on pools of replica_pool_size_max each; a
    # statement there runs at most replica_statement_timeout_ms, then the primary
    # answers the read.
    read_database_urls: str = ""
    replica_lag_max_ms: int = 1000
    replica_poll_ms: int = 100
    replica_pool_size_max: int = 8
    replica_statement_timeout_ms: int = 30_000
    # Worker processes folding events for audit verify and as_of (off the event loop).
    fold_processes: int = 2
    # Webhooks (services/webhooks/, README "Webhooks"). Endpoints per business and
    # event patterns per endpoint.
    webhook_endpoints_max: int = 10
    webhook_patterns_max: int = 20
    # One delivery attempt: the whole request within this many seconds; at most this
    # many bytes of the receiver's answer are read (and kept in the delivery log).
    webhook_timeout_s: float = 10.0
    webhook_response_bytes_max: int = 1024
    # Retries: the wait after the n-th failed attempt is base * 2**(n-1), at most the
    # cap, times a random 0.5-1.0; past the horizon after its first attempt a delivery
    # gives up (`failed`). This many failed attempts in a row disable the endpoint.
    webhook_retry_base_s: float = 5.0
    webhook_retry_cap_s: float = 3600.0
    webhook_retry_horizon_s: float = 86400.0
    webhook_failures_max: int = 20
    # Endpoints one `ledger webhooks` process delivers to at once, and how often it
    # looks for deliveries that became due.
    webhook_senders: int = 8
    webhook_poll_interval_s: float = 1.0
    # Delivered and failed deliveries older than this many days (since delivered or
    # given up) are deleted by the worker (services/webhooks/retention.py); pending
    # ones are kept however old. 1 to 3650.
    webhook_retention_days: int = 7
    # 1 lets endpoints name loopback, private and link-local addresses (tests, a
    # receiver on the same network); 0, the default, refuses them (SSRF).
    webhook_allow_private_addresses: int = 0
    # Test-only (shared/clock.py): an RFC 3339 instant the clock reads when the process
    # starts, running on from there. Empty, the default: the real UTC time.
    test_clock_start: str = ""


# Settings no environment variable changes (part of the HTTP contract).
_FIXED_FIELDS = frozenset({"body_size_max"})
# Environment variable -> (field, parser): LEDGER_ and the field's name in capitals,
# parsed by the field's type. Every setting has a documented default above.
_ENVIRONMENT: dict[str, tuple[str, type]] = {
    f"LEDGER_{field.name.upper()}": (field.name, field.type)
    for field in msgspec.structs.fields(Settings)
    if field.name not in _FIXED_FIELDS
}
assert all(parse in (str, int, float) for _, parse in _ENVIRONMENT.values())


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
    for key in ("hmac_key", "master_key"):
        if key in values and f"{key}_file" in values:
            name = f"LEDGER_{key.upper()}"
            raise SettingsError(f"{name} and {name}_FILE are both set: set one of them")
    settings = Settings(**values)  # type: ignore[arg-type]
    problem = next(setting_checks.problems(settings, _variable_of), None)
    if problem is not None:  # the first one: fixing it may change the others
        raise SettingsError(problem)
    if not 1 <= settings.projection_partitions <= PARTITIONS_MAX:
        raise SettingsError(
            f"LEDGER_PROJECTION_PARTITIONS={settings.projection_partitions}"
            f" is not between 1 and {PARTITIONS_MAX}"
        )
    if not 0 <= settings.api_processes <= API_PROCESSES_MAX:
        raise SettingsError(
            f"LEDGER_API_PROCESSES={settings.api_processes}"
            f" is not between 0 (the default) and {API_PROCESSES_MAX}"
        )
    return settings


def _variable_of(field: str) -> str:
    return next(name for name, (f, _) in _ENVIRONMENT.items() if f == field)
