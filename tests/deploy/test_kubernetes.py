"""deploy/k8s/: valid against Kubernetes' own OpenAPI schemas (kubernetes-validate
bundles them, strict: unknown fields fail), and in step with the CLI and settings."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from shared.config import load_settings
from tests.deploy.deploy_files import (
    DEPLOY,
    SETTINGS_VARIABLES,
    dockerfile_instructions,
    final_stage,
    ledger_arguments,
    load_yaml,
    long_running_commands,
)

KUBERNETES_VERSION = "1.31.0"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))
DOCUMENTS = [document for path in MANIFESTS for document in load_yaml(path)]


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [document for document in DOCUMENTS if document["kind"] == kind]


def _named(kind: str) -> dict[str, dict[str, Any]]:
    return {document["metadata"]["name"]: document for document in _of_kind(kind)}


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = workload["spec"]["template"]["spec"]
    return pod


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = _pod(workload)["containers"]
    return container


DEPLOYMENTS = _named("Deployment")
(JOB,) = _of_kind("Job")
WORKLOADS = [*DEPLOYMENTS.values(), JOB]
CONFIG = _named("ConfigMap")["ledger-config"]["data"]


def _configured_environment(container: dict[str, Any]) -> dict[str, str]:
    """The variables a container gets through envFrom, as Kubernetes would set them."""
    environment: dict[str, str] = {}
    for source in container["envFrom"]:
        if "configMapRef" in source:
            environment |= _named("ConfigMap")[source["configMapRef"]["name"]]["data"]
        else:
            environment |= _named("Secret")[source["secretRef"]["name"]]["stringData"]
    for variable in container.get("env", []):
        environment[variable["name"]] = variable["value"]
    return environment


@pytest.mark.parametrize(
    "document",
    DOCUMENTS,
    ids=[f"{d['kind']}/{d['metadata']['name']}" for d in DOCUMENTS],
)
def test_each_manifest_is_valid_for_kubernetes(document: dict[str, Any]) -> None:
    """Strict validation against the Kubernetes 1.31 schemas."""
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_a_misspelt_probe_field() -> None:
    """The same check fails on a typo, so a pass above means something."""
    broken = copy.deepcopy(DEPLOYMENTS["ledger-api"])
    probe = _container(broken)["readinessProbe"]["httpGet"]
    probe["paht"] = probe.pop("path")
    with pytest.raises(kubernetes_validate.ValidationError, match="paht"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_deployments_run_exactly_what_ledger_run_starts() -> None:
    """One Deployment per process of `ledger run` (api, relay, one per projection),
    each running the `ledger` console script with a command its parser accepts."""
    commands = []
    for deployment in DEPLOYMENTS.values():
        command = _container(deployment)["command"]
        assert command[0] == "ledger"
        ledger_arguments(command[1:])
        commands.append(command[1:])
    assert sorted(commands) == long_running_commands()


def test_the_migrations_run_as_a_job_with_the_admin_url() -> None:
    """The Job runs `ledger migrate`, once (restartPolicy Never, bounded retries)."""
    command = _container(JOB)["command"]
    assert command == ["ledger", "migrate"]
    assert ledger_arguments(command[1:]).command == "migrate"
    assert _pod(JOB)["restartPolicy"] == "Never"
    assert "LEDGER_ADMIN_DATABASE_URL" in _configured_environment(_container(JOB))


def test_settings_are_real_variables_and_load() -> None:
    """Every ConfigMap and Secret key is a variable shared/config.py reads, and each
    container's whole environment loads into Settings."""
    for document in _of_kind("ConfigMap") + _of_kind("Secret"):
        keys = set(document.get("data", {})) | set(document.get("stringData", {}))
        assert keys <= SETTINGS_VARIABLES, document["metadata"]["name"]
    for workload in WORKLOADS:
        environment = _configured_environment(_container(workload))
        assert set(environment) <= SETTINGS_VARIABLES
        load_settings(environment)


def test_only_the_job_sees_the_admin_secret() -> None:
    """The processes connect as ledger_app; only the Job mounts the admin URL."""
    holders = [
        workload["metadata"]["name"]
        for workload in WORKLOADS
        if "LEDGER_ADMIN_DATABASE_URL" in _configured_environment(_container(workload))
    ]
    assert holders == ["ledger-migrate"]
    for workload in DEPLOYMENTS.values():
        url = _configured_environment(_container(workload))["LEDGER_DATABASE_URL"]
        assert url.startswith("postgresql://ledger_app:")


def test_secrets_hold_only_placeholders() -> None:
    """No real secret is committed: every Secret value is marked change-me."""
    for secret in _of_kind("Secret"):
        for name, value in secret["stringData"].items():
            assert "change-me" in value, name


def test_the_api_probes_readyz_and_healthz_on_the_configured_port() -> None:
    """Readiness asks /readyz, liveness /healthz, both on the port the API listens on
    (LEDGER_HTTP_PORT, on 0.0.0.0), which the Service targets too."""
    api = _container(DEPLOYMENTS["ledger-api"])
    settings = load_settings(_configured_environment(api))
    assert settings.http_host == "0.0.0.0"
    (port,) = api["ports"]
    assert port == {"name": "http", "containerPort": settings.http_port}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    (service,) = _of_kind("Service")
    assert (
        service["spec"]["selector"]
        == DEPLOYMENTS["ledger-api"]["spec"]["selector"]["matchLabels"]
    )
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_the_workers_probe_readyz_and_healthz_on_their_health_port() -> None:
    """The relay, the projectors and the monitor serve no API: each sets
    LEDGER_HEALTH_PORT, names it as the container port `health`, and probes /readyz
    and /healthz there."""
    workers = {n: d for n, d in DEPLOYMENTS.items() if n != "ledger-api"}
    assert sorted(workers) == [
        "ledger-monitor",
        "ledger-projector",
        "ledger-relay",
        "ledger-webhooks",
    ]
    for name, deployment in workers.items():
        container = _container(deployment)
        settings = load_settings(_configured_environment(container))
        assert settings.health_port == 8081, name
        assert settings.http_host == "0.0.0.0"
        assert container["ports"] == [{"name": "health", "containerPort": 8081}]
        assert container["readinessProbe"]["httpGet"] == {
            "path": "/readyz",
            "port": "health",
        }
        assert container["livenessProbe"]["httpGet"] == {
            "path": "/healthz",
            "port": "health",
        }
    api = _container(DEPLOYMENTS["ledger-api"])
    assert load_settings(_configured_environment(api)).health_port == 0


def test_every_container_requests_resources_and_runs_as_the_images_user() -> None:
    """CPU and memory requests, a memory limit, and the Dockerfile's non-root uid."""
    final = final_stage(dockerfile_instructions(DEPLOY / "Dockerfile"))
    (user,) = [arguments for name, arguments in final if name == "USER"]
    uid = int(user.split(":")[0])
    for workload in WORKLOADS:
        container = _container(workload)
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}
        assert set(container["resources"]["limits"]) == {"memory"}
        pod_security = _pod(workload)["securityContext"]
        assert pod_security["runAsNonRoot"] is True
        assert pod_security["runAsUser"] == uid
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["image"] == "ledger:0.1.0"


def test_two_projectors_share_more_partitions() -> None:
    """Two projector replicas (each applies every projection) share the partitions
    (at least one each, so neither is only a standby), rolled without a gap; the
    relay runs a standby beside its leader (advisory lock)."""
    projector = DEPLOYMENTS["ledger-projector"]
    partitions = load_settings(CONFIG).projection_partitions
    assert partitions == 4
    assert projector["spec"]["replicas"] == 2 <= partitions
    assert projector["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert DEPLOYMENTS["ledger-relay"]["spec"]["replicas"] == 2


def test_each_deployments_selector_matches_its_pods() -> None:
    """A Deployment whose selector misses its template's labels is refused by the API
    server; the schema cannot see that, so it is checked here."""
    for deployment in DEPLOYMENTS.values():
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()


def test_a_command_ledger_does_not_know_is_refused() -> None:
    """The command check is the CLI's own parser: an unknown projection fails it, and
    so does the option an earlier version's projector took."""
    with pytest.raises(AssertionError, match="invalid choice: 'ledgers'"):
        ledger_arguments(["replay", "--projection", "ledgers"])
    with pytest.raises(AssertionError, match="unrecognized arguments: --projection"):
        ledger_arguments(["projector", "--projection", "balances"])
