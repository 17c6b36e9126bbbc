"""promtool (Debian package ``prometheus``) accepts ops/prometheus/: the configuration
with its rule files, the alert rules, their unit tests, and every dashboard expression.
Without promtool these skip; under ``CI=true`` they fail instead."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .support import PROMETHEUS, queries, skip_or_fail

EXPECTED_JOBS = {
    "orderflow-fronts": {"orders:3333", "invoices:3334", "gateway:3000", "audit:3335"},
    "orderflow-workers": {"orders-worker:9191", "invoices-worker:9192"},
    "orderflow-relays": {"orders-relay:9301", "invoices-relay:9302"},
    "rabbitmq": {"rabbitmq:15692"},
    "rabbitmq-detailed": {"rabbitmq:15692"},
    "kong": {"kong:8100"},
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        skip_or_fail("promtool is not installed (Debian package `prometheus`)")
    return subprocess.run(
        [tool, *args], capture_output=True, text=True, timeout=120, check=False, cwd=PROMETHEUS
    )


def test_promtool_accepts_the_configuration_and_its_rule_files() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr


def test_promtool_accepts_the_alert_rules() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_dashboard_expression_is_accepted_by_promtool(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {
                        "record": f"dashboard:{q.dashboard}_{q.panel_id}_{q.ref_id}",
                        "expr": q.promql(),
                    }
                    for q in queries()
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(json.dumps(rules, indent=2), encoding="utf-8")  # JSON is valid YAML
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_configuration_scrapes_every_part_rabbitmq_and_kong() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {
        job["job_name"]: {t for static in job["static_configs"] for t in static["targets"]}
        for job in config["scrape_configs"]
    }
    assert jobs == EXPECTED_JOBS
    detailed = next(j for j in config["scrape_configs"] if j["job_name"] == "rabbitmq-detailed")
    assert detailed["metrics_path"] == "/metrics/detailed"
    assert set(detailed["params"]["family"]) == {"queue_coarse_metrics", "queue_consumer_count"}
    assert config["rule_files"] == ["alerts.yml"]


def test_every_alert_has_a_test_and_a_severity() -> None:
    alerts = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    rules = [rule for group in alerts["groups"] for rule in group["rules"]]
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]}
    firing = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
    assert {rule["alert"] for rule in rules} == tested == firing
    assert {
        "OrderflowSagaStuck",
        "OrderflowOutboxLagging",
        "OrderflowDeadLetters",
        "OrderflowHttpErrors",
    } <= tested


@pytest.mark.parametrize("dashboard", ["saga", "workers", "http"])
def test_jobs_the_dashboards_filter_on_exist(dashboard: str) -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    for query in queries(dashboard):
        for job in re.findall(r'job="([^"]+)"', query.expr):
            assert job in jobs, query.name
