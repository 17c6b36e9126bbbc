"""ops/otel/collector.yaml, the compose stack's OpenTelemetry Collector, checked by its
structure: no package registry we reach ships the collector's binary (its ``validate``
command would need Docker or a GitHub download), so these tests stand in for it.

They read the file as the collector would wire it (every component defined and used, in
an order that works), against the component names of the pinned contrib release, and
against the code: the tail-sampling policies must keep the spans orderflow really emits
for an error and for a compensation."""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict
from typing import Any

import pytest
import yaml
from dramatiq.brokers.stub import StubBroker
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util.types import Attributes

from actors import catalogue
from actors import tracing as actor_tracing
from ops.cli import TRACED_COMMANDS
from orders.events import OrderCancelled, OrderPlaced

from .stack import (
    OPS,
    depends_on,
    environment,
    host_and_port,
    host_path_of,
    network_names,
    orderflow_processes,
)
from .test_compose_ports import published

COLLECTOR = "otel-collector"
COLLECTOR_FILE = OPS / "otel" / "collector.yaml"
CONTRIB_VERSION = "0.159.0"  # the image's tag; KNOWN_TYPES is read off its manifest
# Component types of otelcol-contrib 0.159.0 (opentelemetry-collector-releases,
# distributions/otelcol-contrib/manifest.yaml) this stack uses or may well use: add the
# type here, after checking the manifest of the pinned release, before using another.
KNOWN_TYPES = {
    "receivers": {"otlp", "jaeger", "zipkin"},
    "processors": {
        "memory_limiter",
        "tail_sampling",
        "batch",
        "probabilistic_sampler",
        "filter",
        "attributes",
        "resource",
        "transform",
    },
    "exporters": {"otlp_grpc", "otlp_http", "debug"},
    "extensions": {"health_check", "pprof", "zpages"},
}
RENAMED = {"otlp": "otlp_grpc", "otlphttp": "otlp_http"}  # exporters' aliases since 0.144
POLICY_TYPES = {
    "always_sample",
    "and",
    "boolean_attribute",
    "bytes_limiting",
    "composite",
    "drop",
    "latency",
    "not",
    "numeric_attribute",
    "ottl_condition",
    "probabilistic",
    "rate_limiting",
    "span_count",
    "status_code",
    "string_attribute",
    "trace_state",
}
# Jaeger v2's built-in all-in-one configuration takes OTLP/gRPC here.
JAEGER_OTLP_GRPC_PORT = 4317


@pytest.fixture(scope="module")
def collector_config() -> dict[str, Any]:
    """ops/otel/collector.yaml parsed: plain YAML, no ``${env:...}`` left to expand."""
    text = COLLECTOR_FILE.read_text(encoding="utf-8")
    assert "${" not in text, "these tests read the file as written: expand references first"
    return yaml.safe_load(text)


def component_type(name: str) -> str:
    """``otlp_grpc/jaeger`` → ``otlp_grpc``: a component's type, before its ``/name``."""
    return name.partition("/")[0]


def processors(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The processors of the traces pipeline by type, in pipeline order."""
    names = config["service"]["pipelines"]["traces"]["processors"]
    defined = config.get("processors") or {}
    return {component_type(name): defined.get(name) or {} for name in names}


def policies(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The tail-sampling policies (top level: each one alone can keep a trace)."""
    sampling = processors(config).get("tail_sampling")
    assert sampling, "the traces pipeline has no tail_sampling processor"
    return sampling["policies"]


def keeps(policy: dict[str, Any], attributes: Attributes) -> bool:
    """Whether a ``string_attribute`` policy matches a span with these attributes (exact
    values, the only form this file uses)."""
    if policy["type"] != "string_attribute":
        return False
    matching = policy["string_attribute"]
    assert not matching.get("enabled_regex_matching"), "model regex matching here first"
    assert not matching.get("invert_match"), "an inverted match keeps what it does not name"
    return (attributes or {}).get(matching["key"]) in matching["values"]


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """The spans ``actors.tracing`` makes, recorded by a tracer of our own (the process's
    global provider stays as the other tests set it)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(actor_tracing, "tracer", provider.get_tracer("orderflow.dramatiq"))
    return exporter


def step_spans(exporter: InMemorySpanExporter, event_type: str, payload: dict) -> list[Attributes]:
    """The attributes of the spans of the steps ``event_type`` starts: each message the
    relay publishes for it, published and processed through the tracing middleware."""
    broker, middleware = StubBroker(), actor_tracing.Tracing()
    for message in catalogue.messages_for(event_type, str(uuid.uuid4()), payload):
        middleware.before_enqueue(broker, message, None)
        middleware.after_enqueue(broker, message, None)
        middleware.before_process_message(broker, message)
        middleware.after_process_message(broker, message)
    recorded = [span.attributes for span in exporter.get_finished_spans()]
    exporter.clear()
    assert recorded, f"no step follows {event_type}"
    return recorded


# --- the file's wiring ------------------------------------------------------------------


def test_every_component_in_the_pipeline_is_defined_and_every_defined_one_is_used(
    collector_config: dict[str, Any],
) -> None:
    pipelines = collector_config["service"]["pipelines"]
    assert set(pipelines) == {"traces"}, "only traces go through this collector"
    used: dict[str, set[str]] = {"receivers": set(), "processors": set(), "exporters": set()}
    for pipeline in pipelines.values():
        for kind, names in used.items():
            assert pipeline.get(kind), f"the pipeline has no {kind}"
            names.update(pipeline[kind])
    used["extensions"] = set(collector_config["service"].get("extensions") or [])
    for kind, names in used.items():
        defined = set(collector_config.get(kind) or {})
        assert names <= defined, f"{kind} used but never defined: {sorted(names - defined)}"
        assert defined <= names, f"{kind} defined but never used: {sorted(defined - names)}"


def test_every_component_type_exists_in_the_pinned_contrib_release(
    collector_config: dict[str, Any],
) -> None:
    for kind, known in KNOWN_TYPES.items():
        for name in collector_config.get(kind) or {}:
            kind_of = component_type(name)
            if kind == "exporters" and kind_of in RENAMED:
                pytest.fail(f"{name}: `{kind_of}` is deprecated, write `{RENAMED[kind_of]}`")
            assert kind_of in known, f"{kind}: {name} is no {CONTRIB_VERSION} component we know"


def test_memory_limiter_comes_first_and_batch_after_tail_sampling(
    collector_config: dict[str, Any],
) -> None:
    order = list(processors(collector_config))
    assert order[0] == "memory_limiter", f"memory_limiter must refuse data first: {order}"
    assert order.index("batch") > order.index("tail_sampling"), f"batch the kept spans: {order}"
    limiter = processors(collector_config)["memory_limiter"]
    assert limiter.get("check_interval"), "memory_limiter does nothing without check_interval"
    assert limiter.get("limit_mib") or limiter.get("limit_percentage"), "no memory limit"


def test_the_receiver_takes_otlp_on_4317_and_4318_on_every_interface(
    collector_config: dict[str, Any],
) -> None:
    pipeline = collector_config["service"]["pipelines"]["traces"]
    assert [component_type(name) for name in pipeline["receivers"]] == ["otlp"]
    protocols = collector_config["receivers"][pipeline["receivers"][0]]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"


# --- sampling -------------------------------------------------------------------------


def test_every_policy_is_a_known_type_with_its_settings(collector_config: dict[str, Any]) -> None:
    names = [policy["name"] for policy in policies(collector_config)]
    assert len(names) == len(set(names)), f"policy names repeat: {names}"
    for policy in policies(collector_config):
        assert policy["type"] in POLICY_TYPES, policy
        if policy["type"] != "always_sample":
            assert policy.get(policy["type"]), f"{policy['name']} has no {policy['type']} block"


def test_every_trace_with_an_error_is_kept(collector_config: dict[str, Any]) -> None:
    on_status = [p for p in policies(collector_config) if p["type"] == "status_code"]
    assert any("ERROR" in p["status_code"]["status_codes"] for p in on_status), (
        "no policy keeps a trace with a span whose status is ERROR"
    )


def test_every_trace_with_a_compensation_is_kept(
    collector_config: dict[str, Any], spans: InMemorySpanExporter
) -> None:
    # Given an order cancelled (orders.store.cancel emits OrderCancelled: its invoice
    # must be voided, the saga's compensation)
    cancelled = OrderCancelled(str(uuid.uuid4()), "c1", "customer_cancelled")
    # When the relay publishes it and the invoices worker runs the step
    compensation = step_spans(spans, type(cancelled).__name__, asdict(cancelled))
    # Then a policy keeps its trace on the spans of that step
    assert any(keeps(p, span) for p in policies(collector_config) for span in compensation), (
        f"no policy matches the compensation's spans: {compensation}"
    )


def test_the_compensation_policy_keeps_no_step_of_a_happy_order(
    collector_config: dict[str, Any], spans: InMemorySpanExporter
) -> None:
    order_id = str(uuid.uuid4())
    placed = OrderPlaced(order_id, "c1", "10.00", "EUR")
    happy = [
        *step_spans(spans, type(placed).__name__, asdict(placed)),
        *step_spans(spans, "InvoiceIssued", {"order_id": order_id, "invoice_id": "i1"}),
        *step_spans(spans, "InvoicePaid", {"order_id": order_id, "invoice_id": "i1"}),
    ]
    kept = [span for span in happy for p in policies(collector_config) if keeps(p, span)]
    assert not kept, f"a step of the happy path counts as a compensation: {kept}"


def test_a_stated_share_of_the_other_traces_is_kept(
    collector_config: dict[str, Any],
) -> None:
    types = [policy["type"] for policy in policies(collector_config)]
    assert "always_sample" not in types and "drop" not in types, types
    (rest,) = [p for p in policies(collector_config) if p["type"] == "probabilistic"]
    assert 0 < rest["probabilistic"]["sampling_percentage"] < 100, rest


# --- the collector in the compose stack ---------------------------------------------------


def test_the_collector_is_the_contrib_image_at_a_pinned_version(compose: dict[str, Any]) -> None:
    image = compose["services"][COLLECTOR]["image"]
    assert image == f"otel/opentelemetry-collector-contrib:{CONTRIB_VERSION}", (
        f"{image}: pin the contrib release KNOWN_TYPES is read off (and update both together)"
    )


def test_the_collector_reads_ops_otel_collector_yaml(compose: dict[str, Any]) -> None:
    collector = compose["services"][COLLECTOR]
    (flag,) = [arg for arg in collector["command"] if arg.startswith("--config=")]
    path = flag.partition("=")[2]
    assert host_path_of(collector, path) == COLLECTOR_FILE, path


def test_the_collector_exports_to_the_jaeger_service_s_otlp_grpc_port(
    collector_config: dict[str, Any], compose: dict[str, Any]
) -> None:
    names = network_names(compose)
    for name in collector_config["service"]["pipelines"]["traces"]["exporters"]:
        exporter = collector_config["exporters"][name]
        host, port = host_and_port(f"grpc://{exporter['endpoint']}")
        assert names.get(host) == "jaeger", f"{name} exports to {host}, not to Jaeger"
        assert port == JAEGER_OTLP_GRPC_PORT, f"{name}: Jaeger takes OTLP/gRPC on 4317"
        assert exporter.get("tls", {}).get("insecure") is True, "Jaeger has no certificate"
    jaeger = compose["services"]["jaeger"]
    assert re.fullmatch(r"jaegertracing/jaeger:2\.\d+\.\d+", jaeger["image"]), jaeger["image"]
    assert depends_on(compose["services"][COLLECTOR]) == {"jaeger": "service_healthy"}


def test_only_jaeger_s_ui_reaches_the_host(compose: dict[str, Any]) -> None:
    assert published(compose["services"]["jaeger"]) == [("127.0.0.1", "16686", "16686")]
    assert not compose["services"][COLLECTOR].get("ports"), "the collector is for the stack"


def test_every_traced_orderflow_process_exports_to_the_collector(compose: dict[str, Any]) -> None:
    names = network_names(compose)
    exporting = 0
    for name, service in orderflow_processes(compose).items():
        if service["command"][0] not in (*TRACED_COMMANDS, "worker"):  # ops.worker traces
            assert name == "migrate", f"{name} runs an untraced command"
            continue
        env = environment(service)
        assert env.get("OTEL_TRACES_EXPORTER") == "otlp", f"{name} exports no traces"
        host, _ = host_and_port(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert names.get(host) == COLLECTOR, f"{name} sends its spans to {host}"
        assert depends_on(service).get(COLLECTOR) == "service_started", name
        exporting += 1
    assert exporting == len(orderflow_processes(compose)) - 1
    assert depends_on(compose["services"]["kong"]).get(COLLECTOR) == "service_started"
