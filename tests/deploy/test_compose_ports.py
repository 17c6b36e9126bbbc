"""Ports and host names agree across the stack: what each orderflow process listens on
(ops.settings with the service's environment), its healthcheck, Kong's upstreams
(ops/kong/kong.yaml), Prometheus's targets (ops/prometheus/prometheus.yml), the gateway's
upstreams, the OpenTelemetry Collector (ops/otel/collector.yaml) and Grafana's datasource;
and what reaches the host."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ops.settings import Settings

from .stack import (
    OPS,
    PROCESSES,
    environment,
    host_and_port,
    mount_at,
    network_names,
    orderflow_processes,
    probe_url,
)

KONG_YAML = OPS / "kong" / "kong.yaml"
PROMETHEUS_YML = OPS / "prometheus" / "prometheus.yml"
GRAFANA_DATASOURCES = OPS / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
OTEL_COLLECTOR = OPS / "otel" / "collector.yaml"
# Only these reach the host, and only on 127.0.0.1 (ops/compose.yaml's header says why).
PUBLISHED = {"kong", "grafana", "jaeger", "prometheus", "rabbitmq"}


def listening_port(compose: dict[str, Any], name: str) -> int | None:
    """The port a process listens on, per its settings: HTTP for a front, metrics for a
    worker pool or relay, None for the migration."""
    service = compose["services"][name]
    settings = Settings.from_env(environment(service))
    match service["command"]:
        case ["serve", front]:
            return settings.port(front)
        case ["worker" | "relay" as part, queue]:
            return settings.metrics_port(f"{queue}-{part}")
    return None


def other_listeners(compose: dict[str, Any]) -> dict[str, int]:
    """Ports the non-orderflow services serve Prometheus on, as their configuration says."""
    services = compose["services"]
    plugins = mount_at(services["rabbitmq"], "/etc/rabbitmq/enabled_plugins")
    assert plugins is not None, "rabbitmq mounts no enabled_plugins"
    assert "rabbitmq_prometheus" in plugins.host_path.read_text(encoding="utf-8")
    status = environment(services["kong"])["KONG_STATUS_LISTEN"]
    return {"rabbitmq": 15692, "kong": int(status.rsplit(":", 1)[1].split()[0])}


def published(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Each ``ports`` entry as (host address, host port, container port)."""
    found = []
    for entry in service.get("ports", []):
        parts = str(entry).split("/")[0].split(":")
        address = parts[0] if len(parts) == 3 else ""
        found.append((address, parts[-2] if len(parts) > 1 else "", parts[-1]))
    return found


@pytest.mark.parametrize("name", sorted(set(PROCESSES) - {"migrate"}))
def test_each_process_probes_its_own_port(compose: dict[str, Any], name: str) -> None:
    host, port = host_and_port(probe_url(compose["services"][name]))
    assert (host, port) == ("127.0.0.1", listening_port(compose, name))


def test_every_listening_process_binds_all_interfaces(compose: dict[str, Any]) -> None:
    for name, service in orderflow_processes(compose).items():
        if name != "migrate":
            assert Settings.from_env(environment(service)).host == "0.0.0.0", name


def test_prometheus_scrapes_every_process_on_the_port_it_listens_on(
    compose: dict[str, Any],
) -> None:
    config = yaml.safe_load(PROMETHEUS_YML.read_text(encoding="utf-8"))
    targets = {
        host_and_port(f"http://{target}")
        for job in config["scrape_configs"]
        for group in job.get("static_configs", [])
        for target in group["targets"]
    }
    names, others = network_names(compose), other_listeners(compose)
    for host, port in sorted(targets):
        assert host in names, f"Prometheus scrapes {host}, which is no compose service"
        service = names[host]
        expected = others.get(service) or listening_port(compose, service)
        assert port == expected, f"Prometheus scrapes {host}:{port}; it listens on {expected}"
    scraped = {names.get(host) for host, _ in targets}
    listening = {n for n in orderflow_processes(compose) if listening_port(compose, n)}
    assert listening <= scraped, f"never scraped: {sorted(listening - scraped)}"


def test_kong_forwards_to_each_front_on_the_port_it_listens_on(compose: dict[str, Any]) -> None:
    config = yaml.safe_load(KONG_YAML.read_text(encoding="utf-8"))
    names = network_names(compose)
    for upstream in config["services"]:
        host, port = host_and_port(upstream["url"])
        assert names.get(host) in PROCESSES, f"Kong forwards to {host}, which is no front"
        assert compose["services"][names[host]]["command"][0] == "serve", host
        assert port == listening_port(compose, names[host]), upstream["url"]


def test_the_gateway_reaches_each_service_on_the_port_it_listens_on(
    compose: dict[str, Any],
) -> None:
    settings = Settings.from_env(environment(compose["services"]["gateway"]))
    names = network_names(compose)
    for service in ("orders", "invoices"):
        host, port = host_and_port(settings.service_url(service))
        assert compose["services"][names[host]]["command"] == ["serve", service]
        assert port == listening_port(compose, names[host])


def test_traces_go_to_the_collector_s_otlp_http_port(compose: dict[str, Any]) -> None:
    names = network_names(compose)
    kong = yaml.safe_load(KONG_YAML.read_text(encoding="utf-8"))
    endpoints = [
        p["config"]["traces_endpoint"] for p in kong["plugins"] if p["name"] == "opentelemetry"
    ]
    for service in orderflow_processes(compose).values():
        env = environment(service)
        if env.get("OTEL_TRACES_EXPORTER") == "otlp":
            endpoints.append(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert len(endpoints) > 1, "neither Kong nor the processes export traces"
    collector = yaml.safe_load(OTEL_COLLECTOR.read_text(encoding="utf-8"))
    http = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    listening = int(http.rsplit(":", 1)[1])
    for endpoint in endpoints:
        host, port = host_and_port(endpoint)
        image = compose["services"][names[host]]["image"]
        assert image.startswith("otel/opentelemetry-collector-contrib:"), endpoint
        assert port == listening, f"{endpoint}: the collector takes OTLP/HTTP on {listening}"


def test_grafana_s_datasource_is_the_stack_s_prometheus(compose: dict[str, Any]) -> None:
    datasources = yaml.safe_load(GRAFANA_DATASOURCES.read_text(encoding="utf-8"))
    host, port = host_and_port(datasources["datasources"][0]["url"])
    prometheus = compose["services"][network_names(compose)[host]]
    assert prometheus["image"].startswith("prom/prometheus:")
    assert not any(a.startswith("--web.listen-address") for a in prometheus["command"])
    assert port == 9090  # Prometheus's default listen address


def test_only_the_uis_and_kong_s_proxy_reach_the_host_and_only_locally(
    compose: dict[str, Any],
) -> None:
    publishing = {name for name, s in compose["services"].items() if s.get("ports")}
    assert publishing <= PUBLISHED, f"published but should not be: {publishing - PUBLISHED}"
    host_ports = []
    for name in sorted(publishing):
        for address, host_port, _ in published(compose["services"][name]):
            assert address == "127.0.0.1", f"{name} publishes {host_port} on every interface"
            host_ports.append(host_port)
    assert len(host_ports) == len(set(host_ports)), f"a host port is taken twice: {host_ports}"
    kong = compose["services"]["kong"]
    proxy = environment(kong)["KONG_PROXY_LISTEN"].rsplit(":", 1)[1].split()[0]
    assert ("127.0.0.1", "8000", proxy) in published(kong), "Kong's proxy is not on :8000"
    assert published(compose["services"]["rabbitmq"]) == [("127.0.0.1", "15672", "15672")]
