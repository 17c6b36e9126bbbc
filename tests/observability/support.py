"""What the observability tests share: the files under test, their panels and queries."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "ops" / "grafana" / "dashboards"
PROVISIONING = ROOT / "ops" / "grafana" / "provisioning"
PROMETHEUS = ROOT / "ops" / "prometheus"

# Dashboards over orderflow's own metrics (the live test queries every panel of these);
# RabbitMQ's and Kong's need their servers' exporters.
ORDERFLOW_DASHBOARDS = ("saga", "workers", "http")
ALL_DASHBOARDS = (*ORDERFLOW_DASHBOARDS, "rabbitmq", "kong")

# Grafana's own variables, with values a PromQL parser and a live Prometheus accept.
GRAFANA_BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "10m",
    "__interval_ms": "15000",
    "__range_s": "600",
}
VARIABLE = re.compile(r"\$(?:\{(?P<braced>\w+)(?::\w+)?\}|(?P<plain>\w+))|\[\[(?P<old>\w+)\]\]")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip with ``reason``; under ``CI=true`` fail with it instead."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: failing instead of skipping)")
    pytest.skip(reason)


def load(name: str) -> dict[str, Any]:
    """``ops/grafana/dashboards/<name>.json``, parsed."""
    return json.loads((DASHBOARDS / f"{name}.json").read_text(encoding="utf-8"))


def panels_of(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those nested in rows included (rows themselves left out)."""
    found = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            found += panel.get("panels", [])
        else:
            found.append(panel)
    return found


def variables_used(text: str) -> set[str]:
    """Names of the Grafana variables ``text`` refers to (``$x``, ``${x}``, ``[[x]]``)."""
    return {
        match.group("braced") or match.group("plain") or match.group("old")
        for match in VARIABLE.finditer(text)
    }


def substitute(expr: str, values: dict[str, str]) -> str:
    """``expr`` with each Grafana variable replaced by ``values[name]``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("plain") or match.group("old")
        return values[name]

    return VARIABLE.sub(replace, expr)


@dataclass(frozen=True)
class Query:
    """One panel target."""

    dashboard: str
    panel_id: int
    panel_title: str
    ref_id: str
    expr: str  # as written, with Grafana variables

    @property
    def name(self) -> str:
        return f"{self.dashboard}#{self.panel_id}{self.ref_id} ({self.panel_title})"

    def promql(self, values: dict[str, str] | None = None) -> str:
        """The expression with Grafana's variables and the dashboard's (``.*``) filled in."""
        defaults = dict.fromkeys(variables_used(self.expr), ".*")
        return substitute(self.expr, {**defaults, **GRAFANA_BUILTINS, **(values or {})})


def queries(*names: str) -> list[Query]:
    """Every target of the named dashboards (all of them by default)."""
    found = []
    for name in names or ALL_DASHBOARDS:
        for panel in panels_of(load(name)):
            for target in panel.get("targets", []):
                found.append(
                    Query(name, panel["id"], panel["title"], target["refId"], target["expr"])
                )
    return found
