"""deploy/grafana/ledger-dashboard.json and deploy/prometheus/ledger-alerts.yaml,
offline: the rules pass `promtool check rules`, and every metric the dashboard or the
rules name is one the service's /metrics endpoints export today."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from shared.worker import metrics as worker_metrics
from tests.deploy.deploy_files import SETTINGS_VARIABLES
from tests.deploy.monitoring_files import (
    DASHBOARD,
    PROBE_LABEL,
    RULES,
    alerting_rules,
    dashboard_expressions,
    exported_names,
    load_dashboard,
    load_rules,
    metric_names,
    panels,
)

# The panels the issue asks for, by title.
PANELS_REQUIRED = {
    "Replica replay lag (bytes)",
    "Replicas in rotation",
    "Postings per second",
    "Request latency percentiles",
    "Relay backlog (events)",
    "Relay backlog age",
    "Projection lag per projection (seconds)",
    "Projection lag per projection (events)",
    "Projection lag per partition (seconds)",
    "Projection lag per partition (positions)",
    "Parked events",
    "Import rows per second",
    "429 responses per second",
    "5xx responses per second",
}
SEVERITIES = {"warning", "critical"}


def _promtool_check(path: Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool is missing: deploy/local/ensure-services.sh --with-promtool "
            "installs it (Debian's prometheus package; `make test` runs it as root)"
        )
    return subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _unexported(expressions: list[str]) -> set[str]:
    named = {name for expression in expressions for name in metric_names(expression)}
    return named - exported_names()


def test_the_alert_rules_pass_promtool_check_rules() -> None:
    """promtool parses every rule's PromQL and template and accepts the file."""
    checked = _promtool_check(RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout


def test_promtool_refuses_a_rule_with_broken_promql(tmp_path: Path) -> None:
    """The same check fails on an unbalanced expression, so a pass means something."""
    rules = load_rules()
    rules["groups"][0]["rules"][0]["expr"] = "max by (projection (ledger_x) > 30"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(rules))
    checked = _promtool_check(broken)
    assert checked.returncode == 1
    assert "parse error" in checked.stdout + checked.stderr


def test_every_metric_the_rules_name_is_exported() -> None:
    """Each alert's expr selects only metrics the API or a worker exposes."""
    expressions = [rule["expr"] for rule in alerting_rules(load_rules())]
    assert _unexported(expressions) == set()


def test_every_metric_the_dashboard_names_is_exported() -> None:
    """Each panel target's PromQL selects only metrics the API or a worker exposes."""
    assert _unexported(dashboard_expressions(load_dashboard())) == set()


def test_the_name_check_flags_metrics_the_service_does_not_export() -> None:
    """A made-up metric, a gauge given a counter's suffix, a counter without its
    suffix and a replica metric that does not exist yet are all reported."""
    expressions = [
        "rate(ledger_bogus_total[5m])",
        "ledger_relay_backlog_events_total > 0",
        'sum(rate(ledger_http_requests{status="429"}[5m]))',
        "max(ledger_replica_lag_seconds) > 5",
        "max(ledger_relay_backlog_events)",
    ]
    assert _unexported(expressions) == {
        "ledger_bogus_total",
        "ledger_relay_backlog_events_total",
        "ledger_http_requests",
        "ledger_replica_lag_seconds",
    }


def test_metric_names_are_read_out_of_promql() -> None:
    """Functions, aggregations, keywords, label names in matchers and label lists,
    strings, ranges, numbers and Grafana variables are not taken for metrics."""
    assert metric_names(
        "histogram_quantile(0.99, sum by (le, route) "
        '(rate(ledger_a_bucket{route=~"/x|y", status!="5xx"}[$__rate_interval])))'
    ) == {"ledger_a_bucket"}
    assert metric_names(
        "sum without (instance) (ledger_b) / ignoring(type) group_left ledger_c "
        "offset 5m > bool 1e3 and on(projection) ledger_d unless absent(ledger_e)"
    ) == {"ledger_b", "ledger_c", "ledger_d", "ledger_e"}
    assert metric_names("max_over_time(job:ledger_f:rate5m[10m:1m]) > Inf") == {
        "job:ledger_f:rate5m"
    }
    assert metric_names('label_replace(ledger_g, "dst", "$1", "src", "(.*)")') == {
        "ledger_g"
    }


def test_the_exported_names_are_what_prometheus_client_exposes() -> None:
    """Counters carry _total, histograms _bucket/_sum/_count, gauges their own name;
    the probe children are gone from the workers' registry afterwards."""
    names = {name for name in exported_names() if not name.endswith("_created")}
    histograms = {
        f"ledger_{histogram}_duration_seconds_{suffix}"
        for histogram in ("http_request", "relay_publish", "projection_batch")
        for suffix in ("bucket", "sum", "count")
    }
    assert names == histograms | {
        "ledger_http_requests_total",
        "ledger_events_appended_total",
        "ledger_import_rows_total",
        "ledger_metrics_backlog_reads_total",
        "ledger_relay_backlog_events",
        "ledger_relay_backlog_seconds",
        "ledger_projection_lag_events",
        "ledger_projection_lag_seconds",
        "ledger_projection_partition_lag_positions",
        "ledger_projection_partition_lag_seconds",
        "ledger_projection_parked_events",
        "ledger_relay_published_events_total",
        "ledger_projection_applied_events_total",
        "ledger_projection_parked_total",
        "ledger_replica_lag_bytes",
        "ledger_replica_in_rotation",
        "ledger_replica_reads_total",
        "ledger_replica_fallbacks_total",
        "ledger_replica_bypasses_total",
    }
    assert PROBE_LABEL not in generate_latest(worker_metrics.REGISTRY).decode()


def test_the_dashboard_has_the_panels_the_issue_lists_each_with_a_query() -> None:
    """Every listed title is a panel; every panel that is not a row has at least one
    target with PromQL and its own refId, on the dashboard's datasource variable."""
    dashboard = load_dashboard()
    graphs = [panel for panel in panels(dashboard) if panel["type"] != "row"]
    assert PANELS_REQUIRED <= {panel["title"] for panel in graphs}
    for panel in graphs:
        targets = panel["targets"]
        assert targets, panel["title"]
        assert all(target["expr"].strip() for target in targets), panel["title"]
        assert len({target["refId"] for target in targets}) == len(targets)
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_every_alert_waits_and_carries_severity_summary_and_description() -> None:
    """Each rule is an alert with a `for:`, a known severity and both annotations."""
    rules = alerting_rules(load_rules())
    assert len(rules) == 10
    for rule in rules:
        assert re.fullmatch(r"Ledger[A-Za-z]+", rule["alert"]), rule
        assert re.fullmatch(r"\d+m", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]


def test_every_setting_the_monitoring_files_name_exists() -> None:
    """The LEDGER_* variables the thresholds cite are ones load_settings() reads."""
    text = DASHBOARD.read_text() + RULES.read_text()
    cited = set(re.findall(r"LEDGER_[A-Z0-9_]+", text))
    assert cited
    assert cited <= SETTINGS_VARIABLES, cited - SETTINGS_VARIABLES
