"""The Grafana dashboard for Kong's metrics (ops/grafana/dashboards/kong.json).

Every panel must query Prometheus through the dashboard's datasource variable, every
PromQL expression must parse (``promtool check rules``, Debian package ``prometheus``)
and name only metrics Kong 3.x exports. Without promtool the parsing test skips; under
``CI=true`` it fails instead.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.observability.support import panels_of, skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "ops" / "grafana" / "dashboards" / "kong.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}

# Grafana's own variables, replaced by values a plain PromQL parser accepts.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$service": ".*"}

# What kong/plugins/prometheus/exporter.lua (Kong 3.x) exports over HTTP, with the
# Prometheus suffixes of its histograms.
KONG_METRICS = {
    "kong_http_requests_total",
    "kong_bandwidth_bytes",
    "kong_nginx_connections_total",
    "kong_nginx_requests_total",
    "kong_nginx_timers",
    "kong_datastore_reachable",
    "kong_node_info",
    "kong_upstream_target_health",
    "kong_memory_workers_lua_vms_bytes",
    "kong_memory_lua_shared_dict_bytes",
    "kong_memory_lua_shared_dict_total_bytes",
    *(
        f"kong_{name}_ms_{suffix}"
        for name in ("request_latency", "upstream_latency", "kong_latency")
        for suffix in ("bucket", "sum", "count")
    ),
}


def expressions(dashboard: dict[str, Any]) -> dict[str, str]:
    """Each target's PromQL by ``panel<id>_<refId>``, Grafana variables substituted."""
    found = {}
    for panel in panels_of(dashboard):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            found[f"panel{panel['id']}_{target['refId']}"] = expr
    return found


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    """ops/grafana/dashboards/kong.json, parsed."""
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_the_dashboard_is_a_current_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    """Schema version 38 or later, a stable uid, and a Prometheus datasource variable."""
    assert dashboard["schemaVersion"] >= 38
    assert dashboard["uid"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"


def test_every_panel_has_the_datasource_and_targets(dashboard: dict[str, Any]) -> None:
    """Each panel and each of its targets queries ``${DS_PROMETHEUS}`` with an expression."""
    assert panels_of(dashboard)
    for panel in panels_of(dashboard):
        assert panel.get("datasource") == DATASOURCE, panel["title"]
        assert panel.get("targets"), f"{panel['title']} has no targets"
        for target in panel["targets"]:
            assert target.get("datasource") == DATASOURCE, (panel["title"], target["refId"])
            assert target.get("expr", "").strip(), (panel["title"], target["refId"])


def test_panel_ids_are_unique(dashboard: dict[str, Any]) -> None:
    """Grafana keys panels by id."""
    ids = [panel["id"] for panel in panels_of(dashboard)]
    assert len(ids) == len(set(ids))


def test_the_panels_cover_what_operators_need(dashboard: dict[str, Any]) -> None:
    """Traffic, error ratios, the three latencies, bandwidth, 429s and connections."""
    text = "\n".join(expressions(dashboard).values())
    for needle in (
        "kong_http_requests_total",
        'code=~"4.."',
        'code=~"5.."',
        'code="429"',
        "kong_request_latency_ms_bucket",
        "kong_upstream_latency_ms_bucket",
        "kong_kong_latency_ms_bucket",
        'direction="ingress"',
        'direction="egress"',
        "kong_nginx_connections_total",
    ):
        assert needle in text, needle
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}," in text


def test_every_metric_is_one_kong_exports(dashboard: dict[str, Any]) -> None:
    """Only Kong 3.x metric names (kong/plugins/prometheus/exporter.lua) are queried."""
    used = set(re.findall(r"\bkong_[a-z_]+", "\n".join(expressions(dashboard).values())))
    assert used <= KONG_METRICS, sorted(used - KONG_METRICS)


def test_every_promql_expression_parses(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """promtool accepts every expression as a recording rule."""
    promtool = shutil.which("promtool")
    if promtool is None:
        skip_or_fail("promtool is not installed (Debian package `prometheus`)")
    rules = {
        "groups": [
            {
                "name": "kong-dashboard",
                "rules": [
                    {"record": f"dashboard:{name}", "expr": expr}
                    for name, expr in expressions(dashboard).items()
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(json.dumps(rules, indent=2), encoding="utf-8")  # JSON is valid YAML
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"promtool check rules failed:\n{result.stdout}{result.stderr}"
