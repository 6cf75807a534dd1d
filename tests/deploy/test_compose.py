"""deploy/compose.yaml: valid against the Compose specification's JSON schema, and in
step with the CLI, the settings and the migrations (no Docker engine runs here)."""

from __future__ import annotations

import copy
import importlib.resources
import json
import os
import re
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from shared.config import load_settings
from shared.key_settings import resolve_key
from tests.deploy.deploy_files import (
    DEPLOY,
    REPOSITORY,
    SETTINGS_VARIABLES,
    ledger_arguments,
    load_yaml,
    long_running_commands,
)

(COMPOSE,) = load_yaml(DEPLOY / "compose.yaml")
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
LEDGER = {name: s for name, s in SERVICES.items() if s.get("image") == "ledger:local"}
LONG_RUNNING = {name: s for name, s in LEDGER.items() if name != "migrate"}
KEYS = "/var/lib/ledger/keys"  # the hash-chain key's volume, in every container


def _compose_schema() -> dict[str, Any]:
    # check-jsonschema ships the compose-spec schema (vendored, with its license), so
    # the check needs no network.
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text())
    return schema


def _validate(document: dict[str, Any]) -> None:
    schema = _compose_schema()
    jsonschema.validators.validator_for(schema)(schema).validate(document)


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    """The whole file (anchors and merge keys resolved) passes the schema."""
    _validate(COMPOSE)


def test_the_schema_check_refuses_a_misspelt_service_key() -> None:
    """The same check fails on a typo, so a pass above means something."""
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["relay"]["comand"] = broken["services"]["relay"].pop("command")
    with pytest.raises(jsonschema.ValidationError, match="comand"):
        _validate(broken)


def test_every_ledger_service_builds_the_one_image_from_deploy_dockerfile() -> None:
    """Each ledger container is the same image, built with the repository as context."""
    assert sorted(LEDGER) == sorted(
        ["migrate", "api", "relay", "projector", "monitor", "webhooks"]
    )
    for service in LEDGER.values():
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        context = DEPLOY / service["build"]["context"]
        assert (context / service["build"]["dockerfile"]).is_file()
        assert context.resolve() == REPOSITORY


def test_the_long_running_services_are_exactly_what_ledger_run_starts() -> None:
    """api, relay and one projector per projection, each a command `ledger` accepts."""
    commands = sorted(service["command"] for service in LONG_RUNNING.values())
    assert commands == long_running_commands()
    for command in commands:
        ledger_arguments(command)
    assert ledger_arguments(LEDGER["migrate"]["command"]).command == "migrate"


def test_ledger_services_set_only_settings_that_load() -> None:
    """Every variable a ledger service sets is one shared/config.py reads, and the
    values load into Settings."""
    for name, service in LEDGER.items():
        environment = service["environment"]
        assert set(environment) <= SETTINGS_VARIABLES, name
        load_settings({key: str(value) for key, value in environment.items()})


def test_only_migrate_holds_the_admin_database_url() -> None:
    """The processes connect as ledger_app; the admin URL is migrate's alone."""
    holders = [
        n for n, s in LEDGER.items() if "LEDGER_ADMIN_DATABASE_URL" in s["environment"]
    ]
    assert holders == ["migrate"]


def test_processes_wait_for_the_migrations_and_restart() -> None:
    """migrate waits for the key and a healthy PostgreSQL and runs once; every process
    waits for the key, for migrate to exit 0 and for a healthy RabbitMQ, and is
    restarted when it stops."""
    migrate = LEDGER["migrate"]
    made = {"condition": "service_completed_successfully"}
    assert migrate["depends_on"] == {
        "hmac-key": made,
        "postgres": {"condition": "service_healthy"},
    }
    assert migrate["restart"] == "no"
    for service in LONG_RUNNING.values():
        assert service["depends_on"] == {
            "hmac-key": made,
            "migrate": made,
            "rabbitmq": {"condition": "service_healthy"},
        }
        assert service["restart"] == "unless-stopped"
    for name in ("postgres", "rabbitmq"):
        assert SERVICES[name]["restart"] == "unless-stopped"
        assert SERVICES[name]["healthcheck"]["test"][0] == "CMD"


def test_the_api_listens_on_all_interfaces_and_its_health_check_asks_readyz() -> None:
    """LEDGER_HTTP_HOST is 0.0.0.0 in the container; the health check and the published
    port use the configured LEDGER_HTTP_PORT."""
    api = LEDGER["api"]
    settings = load_settings(api["environment"])
    assert settings.http_host == "0.0.0.0"
    port = settings.http_port
    assert api["ports"] == [f"127.0.0.1:{port}:{port}"]
    probe = api["healthcheck"]["test"]
    assert probe[:3] == ["CMD", "python", "-c"]
    assert f"urlopen('http://127.0.0.1:{port}/readyz'" in probe[3]


def test_each_worker_answers_its_health_check_on_its_health_port() -> None:
    """The relay, the projectors and the monitor serve no API: each sets
    LEDGER_HEALTH_PORT and its health check asks /readyz there."""
    workers = {name: s for name, s in LONG_RUNNING.items() if name != "api"}
    assert sorted(workers) == ["monitor", "projector", "relay", "webhooks"]
    for name, service in workers.items():
        port = load_settings(service["environment"]).health_port
        assert port == 8081, name
        probe = service["healthcheck"]["test"]
        assert probe[:3] == ["CMD", "python", "-c"]
        assert f"urlopen('http://127.0.0.1:{port}/readyz'" in probe[3]
    assert load_settings(LONG_RUNNING["api"]["environment"]).health_port == 0


def test_rabbitmq_has_the_management_plugin_and_the_ledgers_credentials() -> None:
    """The management image; the AMQP URL's user and password are the broker's."""
    rabbitmq = SERVICES["rabbitmq"]
    assert rabbitmq["image"].endswith("-management")
    assert rabbitmq["ports"] == ["127.0.0.1:15672:15672"]
    for service in LEDGER.values():
        url = urlsplit(service["environment"]["LEDGER_AMQP_URL"])
        assert (url.hostname, url.port) == ("rabbitmq", 5672)
        assert url.username == rabbitmq["environment"]["RABBITMQ_DEFAULT_USER"]
        assert url.password == rabbitmq["environment"]["RABBITMQ_DEFAULT_PASS"]


def test_ledger_app_can_log_in_with_the_password_its_url_carries() -> None:
    """The migrations create ledger_app without a password; compose's init script
    creates it first with the password LEDGER_DATABASE_URL uses, and mounts it where
    the postgres image runs it on a new volume."""
    migration = (REPOSITORY / "shared/store/sql/0001_events.sql").read_text()
    assert "CREATE ROLE ledger_app LOGIN;" in migration
    init = (DEPLOY / "postgres/ledger-app-role.sql").read_text()
    (password,) = re.findall(r"CREATE ROLE ledger_app LOGIN PASSWORD '([^']+)';", init)
    postgres = SERVICES["postgres"]
    assert (
        "./postgres/ledger-app-role.sql:/docker-entrypoint-initdb.d/ledger-app-role.sql:ro"
        in postgres["volumes"]
    )
    for service in LEDGER.values():
        url = urlsplit(service["environment"]["LEDGER_DATABASE_URL"])
        assert (url.username, url.password) == ("ledger_app", password)
        assert (url.hostname, url.port, url.path) == ("postgres", 5432, "/ledger")


def test_the_admin_url_is_the_postgres_images_superuser() -> None:
    """Migrations run as POSTGRES_USER with POSTGRES_PASSWORD on POSTGRES_DB."""
    environment = SERVICES["postgres"]["environment"]
    url = urlsplit(LEDGER["migrate"]["environment"]["LEDGER_ADMIN_DATABASE_URL"])
    assert (url.username, url.password) == (
        environment["POSTGRES_USER"],
        environment["POSTGRES_PASSWORD"],
    )
    assert (url.hostname, url.path) == ("postgres", "/" + environment["POSTGRES_DB"])


def test_postgres_ends_sessions_left_idle_in_a_transaction() -> None:
    """Writers take turns on the commit-order lock (migration 0011), so the server is
    started with idle_in_transaction_session_timeout."""
    assert SERVICES["postgres"]["command"] == [
        "postgres",
        "-c",
        "idle_in_transaction_session_timeout=60s",
    ]


def test_the_hmac_key_is_made_once_in_a_volume_every_ledger_process_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-shot `hmac-key` service writes a random key, owner 10001 and mode 0600,
    to the file every ledger service names in LEDGER_HMAC_KEY_FILE and mounts read-only
    from the same volume; run twice, it keeps the first key, which the service takes."""
    maker = SERVICES["hmac-key"]
    assert (maker["restart"], maker["volumes"]) == ("no", [f"ledger-keys:{KEYS}"])
    assert "ledger-keys" in COMPOSE["volumes"]
    for name, service in LEDGER.items():
        assert "LEDGER_HMAC_KEY" not in service["environment"], name
        assert service["environment"]["LEDGER_HMAC_KEY_FILE"] == f"{KEYS}/hmac.key"
        assert service["volumes"] == [f"ledger-keys:{KEYS}:ro"], name
    script = maker["command"][2].replace(KEYS, str(tmp_path))
    owners: list[tuple[str, int, int]] = []
    monkeypatch.setattr(os, "chown", lambda *owner: owners.append(owner))
    exec(script, {})  # noqa: S102 (the compose file's own script)
    key = (tmp_path / "hmac.key").read_text()
    exec(script, {})  # noqa: S102
    assert (tmp_path / "hmac.key").read_text() == key
    assert owners == [(str(tmp_path / "hmac.key"), 10001, 10001)]
    assert stat.S_IMODE((tmp_path / "hmac.key").stat().st_mode) == 0o600
    settings = {"LEDGER_HMAC_KEY_FILE": str(tmp_path / "hmac.key")}
    assert resolve_key(load_settings(settings)).hmac_key == key.strip()
