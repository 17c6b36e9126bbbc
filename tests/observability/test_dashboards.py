"""The Grafana dashboards and provisioning hang together: every dashboard file is
provisioned, uids and panel ids are unique, every target has a refId and queries the
provisioned Prometheus, and every variable a dashboard uses is defined."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from .support import (
    ALL_DASHBOARDS,
    DASHBOARDS,
    GRAFANA_BUILTINS,
    PROVISIONING,
    load,
    panels_of,
    variables_used,
)

DATASOURCE_VARIABLE = "DS_PROMETHEUS"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
CONTAINER_DASHBOARDS = "/var/lib/grafana/dashboards/orderflow"  # docs/observability.md


def provisioned_datasources() -> list[dict[str, Any]]:
    document = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    return document["datasources"]


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


@pytest.fixture(scope="module", params=ALL_DASHBOARDS)
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_every_dashboard_file_is_one_the_tests_know_kong_included() -> None:
    assert sorted(path.stem for path in dashboard_files()) == sorted(ALL_DASHBOARDS)


def test_the_dashboard_provider_provisions_every_file_of_the_dashboards_folder() -> None:
    document = yaml.safe_load((PROVISIONING / "dashboards" / "orderflow.yml").read_text())
    assert document["apiVersion"] == 1
    [provider] = document["providers"]
    assert provider["type"] == "file"
    # One folder, mounted whole (docs/observability.md): each JSON file in it, kong.json
    # included, is a provisioned dashboard.
    assert provider["options"]["path"] == CONTAINER_DASHBOARDS
    assert not provider["options"].get("foldersFromFilesStructure")
    assert (DASHBOARDS / "kong.json") in dashboard_files()
    docs = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()
    assert f"ops/grafana/dashboards:{CONTAINER_DASHBOARDS}" in docs


def test_one_prometheus_datasource_is_provisioned_as_the_default() -> None:
    [datasource] = provisioned_datasources()
    assert datasource["type"] == "prometheus"
    assert datasource["isDefault"] is True
    assert datasource["uid"]
    assert datasource["url"].startswith("http://prometheus:9090")


def test_every_dashboard_file_is_valid_json_with_a_unique_uid_and_title() -> None:
    dashboards = [json.loads(path.read_text(encoding="utf-8")) for path in dashboard_files()]
    uids = [dashboard["uid"] for dashboard in dashboards]
    titles = [dashboard["title"] for dashboard in dashboards]
    assert all(uids) and len(uids) == len(set(uids)), uids
    assert len(titles) == len(set(titles)), titles
    assert all(len(uid) <= 40 for uid in uids)  # Grafana's limit


def test_a_dashboard_is_a_current_grafana_dashboard_with_the_datasource_variable(
    dashboard: dict[str, Any],
) -> None:
    assert dashboard["schemaVersion"] >= 38
    assert "orderflow" in dashboard["tags"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    # A datasource variable of type prometheus: Grafana resolves it to the default
    # Prometheus datasource, the provisioned one.
    assert variables[DATASOURCE_VARIABLE]["type"] == "datasource"
    assert variables[DATASOURCE_VARIABLE]["query"] == "prometheus"


def test_panel_ids_are_unique_within_a_dashboard(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in panels_of(dashboard)]
    assert len(ids) == len(set(ids)), ids


def test_every_panel_and_target_queries_the_provisioned_prometheus_with_a_ref_id(
    dashboard: dict[str, Any],
) -> None:
    assert panels_of(dashboard)
    for panel in panels_of(dashboard):
        assert panel.get("datasource") == DATASOURCE, panel["title"]
        assert panel.get("targets"), f"{panel['title']} has no targets"
        ref_ids = [target.get("refId") for target in panel["targets"]]
        assert all(ref_ids), f"{panel['title']}: a target without refId"
        assert len(ref_ids) == len(set(ref_ids)), f"{panel['title']}: refIds repeat"
        for target in panel["targets"]:
            assert target.get("datasource") == DATASOURCE, (panel["title"], target["refId"])
            assert target.get("expr", "").strip(), (panel["title"], target["refId"])


def test_query_variables_query_the_provisioned_prometheus(dashboard: dict[str, Any]) -> None:
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, variable["name"]


def test_every_variable_a_dashboard_uses_is_defined(dashboard: dict[str, Any]) -> None:
    defined = {variable["name"] for variable in dashboard["templating"]["list"]}
    text = json.dumps(dashboard)
    # Grafana's own variables, and legend templates ({{label}}) which are not variables.
    undefined = variables_used(text) - defined - set(GRAFANA_BUILTINS)
    assert not undefined, sorted(undefined)


def test_every_defined_query_variable_is_used_by_a_panel(dashboard: dict[str, Any]) -> None:
    used = variables_used(json.dumps(panels_of(dashboard)))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["name"] in used, f"{variable['name']} filters nothing"


def test_panels_do_not_overlap_on_the_grid(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in panels_of(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_the_saga_overview_shows_what_the_issue_asks_for() -> None:
    text = "\n".join(t["expr"] for p in panels_of(load("saga")) for t in p["targets"])
    for needle in (
        'route="/orders", method="POST", status="201"',  # placed
        "orderflow_saga_duration_seconds_count",  # confirmed / cancelled / paid
        "orderflow_compensations_total",
        "orderflow_outbox_lag_seconds",
        "orderflow_outbox_backlog",
        "orderflow_dead_letters",
        "orderflow_dead_letters_total",
    ):
        assert needle in text, needle
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le) (rate(orderflow_saga" in text


def test_the_workers_and_http_dashboards_cover_rate_errors_retries_and_latency() -> None:
    workers = "\n".join(t["expr"] for p in panels_of(load("workers")) for t in p["targets"])
    for needle in (
        "dramatiq_messages_total",
        "dramatiq_message_errors_total",
        "dramatiq_message_retries_total",
        "dramatiq_message_duration_milliseconds_bucket",
        "by (le, actor_name)",
    ):
        assert needle in workers, needle
    http = "\n".join(t["expr"] for p in panels_of(load("http")) for t in p["targets"])
    for needle in (
        "sum by (service, method, route)",
        'status=~"5.."',
        "orderflow_http_request_duration_seconds_bucket",
        "by (le, service, method, route)",
    ):
        assert needle in http, needle
