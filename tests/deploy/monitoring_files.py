"""What the monitoring tests read: the Grafana dashboard and the Prometheus alert rules
under deploy/, the PromQL each of them holds, the metric names that PromQL refers to,
and the names the service exports (the API's registry and the workers')."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import asyncpg
import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from services.http.metrics import ApiMetrics
from services.http.replica_polls import Replica
from services.http.replica_reads import ROTATION, ReplicaCollector
from services.http.replica_rotation import Rotation
from shared.worker import metrics as worker_metrics
from tests.deploy.deploy_files import DEPLOY

DASHBOARD = DEPLOY / "grafana" / "ledger-dashboard.json"
RULES = DEPLOY / "prometheus" / "ledger-alerts.yaml"
# A label value no real child has: the sample it makes is scraped, then removed.
PROBE_LABEL = "__metric_names_probe__"

# PromQL words that are not metric names: operators, modifiers, literals.
KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left"}
    | {"group_right", "offset", "bool", "atan2", "inf", "nan", "start", "end"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_MATCHERS = re.compile(r"\{[^}]*\}")
_LABEL_LIST = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
)
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression selects. Strings, Grafana variables,
    label matchers, label lists (`by (…)`, `on (…)`…) and ranges go first; of the
    identifiers left, those followed by `(` are functions or aggregations, and the
    keywords are operators: the rest are metric names."""
    text = _STRING.sub(" ", expression)
    text = _GRAFANA_VARIABLE.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _RANGE.sub(" ", text)
    return {
        name
        for name, call in _IDENTIFIER.findall(text)
        if not call and name.lower() not in KEYWORDS
    }


def exported_names() -> set[str]:
    """Every sample name the service's /metrics endpoints expose: the API's registry
    (a fresh one) and the workers', each labelled metric given one child so that its
    samples show, scraped in Prometheus' text format and parsed back."""
    api = ApiMetrics()
    return (
        _scraped(api.registry, _collectors(vars(api)))
        | _scraped(worker_metrics.REGISTRY, _collectors(vars(worker_metrics)))
        | _scraped(_replica_registry(), [])
    )


def _replica_registry() -> CollectorRegistry:
    """The API's replica metrics (services/http/replica_reads.py), registered only
    with LEDGER_READ_DATABASE_URLS: one replica, polled once."""

    async def no_pool(url: str) -> asyncpg.Pool:
        raise AssertionError(url)

    async def no_connection(url: str) -> asyncpg.Connection:
        raise AssertionError(url)

    url = "postgresql://ledger_app@replica:5432/ledger"
    replica = Replica(url, no_pool, no_connection, url)
    replica.replayed = 100
    rotation = Rotation(None, [replica], poll_s=0.1, lag_max_s=1.0)  # type: ignore[arg-type]
    rotation.primary_lsn = 150
    app = web.Application()
    app[ROTATION] = rotation
    registry = CollectorRegistry()
    registry.register(ReplicaCollector(app))
    return registry


def _collectors(namespace: dict[str, Any]) -> list[MetricWrapperBase]:
    return [
        value for value in namespace.values() if isinstance(value, MetricWrapperBase)
    ]


def _scraped(
    registry: CollectorRegistry, collectors: list[MetricWrapperBase]
) -> set[str]:
    labelled = [c for c in collectors if c._labelnames]
    for collector in labelled:
        collector.labels(*[PROBE_LABEL] * len(collector._labelnames))
    try:
        text = generate_latest(registry).decode()
    finally:
        for collector in labelled:
            collector.remove(*[PROBE_LABEL] * len(collector._labelnames))
    return {
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows too."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    """The PromQL of every panel's targets."""
    return [
        target["expr"]
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def load_rules() -> dict[str, Any]:
    with RULES.open() as file:
        rules: dict[str, Any] = yaml.safe_load(file)
    return rules


def alerting_rules(rules: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in rules["groups"] for rule in group["rules"]]
