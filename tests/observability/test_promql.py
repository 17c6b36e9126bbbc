"""Every PromQL expression parses (promql-parser, Prometheus's grammar) and names only
metrics that exist: orderflow's catalogue, Dramatiq's middleware, RabbitMQ 3.10's
rabbitmq_prometheus plugin (Kong's dashboard has its own test in tests/kong)."""

from __future__ import annotations

import re
from pathlib import Path

import dramatiq.middleware.prometheus
import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY

from ops.shared.telemetry import metrics

from .support import PROMETHEUS, Query, queries

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}

# What dramatiq/middleware/prometheus.py (Dramatiq 2) declares, as scraped.
DRAMATIQ_METRICS = {
    "dramatiq_messages_total": "counter",
    "dramatiq_message_errors_total": "counter",
    "dramatiq_message_retries_total": "counter",
    "dramatiq_message_rejects_total": "counter",
    "dramatiq_messages_inprogress": "gauge",
    "dramatiq_delayed_messages_inprogress": "gauge",
    "dramatiq_message_duration_milliseconds": "histogram",
}

# Read off RabbitMQ 3.10.8 with rabbitmq_prometheus enabled: /metrics (aggregated, no
# queue labels) and /metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count.
RABBITMQ_METRICS = {
    "rabbitmq_identity_info",
    "rabbitmq_build_info",
    "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_messages_unacked",
    "rabbitmq_queue_messages",
    "rabbitmq_queue_messages_published_total",
    "rabbitmq_connections",
    "rabbitmq_channels",
    "rabbitmq_consumers",
    "rabbitmq_queues",
    "rabbitmq_channel_messages_published_total",
    "rabbitmq_channel_messages_confirmed_total",
    "rabbitmq_channel_messages_unroutable_dropped_total",
    "rabbitmq_channel_messages_unroutable_returned_total",
    "rabbitmq_channel_messages_delivered_total",
    "rabbitmq_channel_messages_delivered_ack_total",
    "rabbitmq_channel_messages_redelivered_total",
    "rabbitmq_channel_messages_acked_total",
    "rabbitmq_channel_get_total",
    "rabbitmq_channel_get_ack_total",
    "rabbitmq_connections_opened_total",
    "rabbitmq_connections_closed_total",
    "rabbitmq_channels_opened_total",
    "rabbitmq_channels_closed_total",
    "rabbitmq_process_resident_memory_bytes",
    "rabbitmq_resident_memory_limit_bytes",
    "rabbitmq_disk_space_available_bytes",
    "rabbitmq_disk_space_available_limit_bytes",
    "rabbitmq_process_open_fds",
    "rabbitmq_process_max_fds",
    "rabbitmq_process_open_tcp_sockets",
    "rabbitmq_process_max_tcp_sockets",
    "rabbitmq_alarms_memory_used_watermark",
    "rabbitmq_alarms_free_disk_space_watermark",
    "rabbitmq_alarms_file_descriptor_limit",
    "rabbitmq_detailed_queue_messages_ready",
    "rabbitmq_detailed_queue_messages_unacked",
    "rabbitmq_detailed_queue_messages",
    "rabbitmq_detailed_queue_consumers",
}
PROMETHEUS_OWN = {"up"}


def orderflow_series_names() -> set[str]:
    """Every series name orderflow's catalogue can expose."""
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("orderflow_"):
            names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return names


def dramatiq_series_names() -> set[str]:
    names = set()
    for name, kind in DRAMATIQ_METRICS.items():
        base = name.removesuffix("_total") if kind == "counter" else name
        names |= {base + suffix for suffix in SUFFIXES[kind]}
    return names


def known_series() -> set[str]:
    return orderflow_series_names() | dramatiq_series_names() | RABBITMQ_METRICS | PROMETHEUS_OWN


def selected_metrics(expr: str) -> set[str]:
    """Names of the metrics an expression selects."""
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expr}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names


def alert_expressions() -> list[tuple[str, str]]:
    document = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [
        (rule["alert"], rule["expr"]) for group in document["groups"] for rule in group["rules"]
    ]


@pytest.mark.parametrize("query", queries(), ids=lambda query: query.name)
def test_every_dashboard_expression_parses(query: Query) -> None:
    promql_parser.parse(query.promql())


@pytest.mark.parametrize(
    "query", queries("saga", "workers", "http", "rabbitmq"), ids=lambda query: query.name
)
def test_every_metric_a_dashboard_queries_exists(query: Query) -> None:
    unknown = selected_metrics(query.promql()) - known_series()
    assert not unknown, f"{query.name}: {sorted(unknown)}"


@pytest.mark.parametrize(("alert", "expr"), alert_expressions())
def test_every_alert_expression_parses_and_queries_orderflow_metrics(alert: str, expr: str) -> None:
    used = selected_metrics(expr)
    assert used and used <= known_series(), (alert, sorted(used - known_series()))


def test_the_dramatiq_metrics_dashboards_use_are_those_dramatiq_declares() -> None:
    source = Path(dramatiq.middleware.prometheus.__file__).read_text()
    declared = set(re.findall(r'"(dramatiq_[a-z_]+)"', source)) - {
        "dramatiq_prom_db",  # the exporter's settings, not metrics
        "dramatiq_prom_host",
        "dramatiq_prom_port",
    }
    assert set(DRAMATIQ_METRICS) == declared


def test_the_catalogue_names_the_issue_lists_are_all_there() -> None:
    expected = {
        "orderflow_http_requests_total": ["service", "route", "method", "status"],
        "orderflow_http_request_duration_seconds": ["service", "route", "method"],
        "orderflow_orders": ["status"],
        "orderflow_saga_duration_seconds": ["outcome"],
        "orderflow_compensations_total": ["reason"],
        "orderflow_invoices_voided_total": ["refund"],
        "orderflow_outbox_backlog": ["service"],
        "orderflow_outbox_lag_seconds": ["service"],
        "orderflow_dead_letters": ["service"],
        "orderflow_dead_letters_total": ["service", "actor"],
        "orderflow_idempotent_replays_total": ["service"],
        "orderflow_oldest_pending_order_age_seconds": ["service"],
        "orderflow_saga_timeout_seconds": ["service"],
    }
    declared = {
        metric._name + ("_total" if metric._type == "counter" else ""): list(metric._labelnames)
        for metric in vars(metrics).values()
        if hasattr(metric, "_labelnames") and metric._name.startswith("orderflow_")
    }
    assert declared == expected
