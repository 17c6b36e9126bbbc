"""ops/compose.yaml against the rest of the repository: the files it names exist, each
orderflow service runs a real ``orderflow`` subcommand with variables orderflow reads,
and the services start in an order that works."""

from __future__ import annotations

import re
from graphlib import CycleError, TopologicalSorter
from typing import Any

import pytest
import yaml

from ops.settings import Settings, SettingsError

from .stack import (
    OPS,
    PROCESSES,
    builds_this_repository,
    depends_on,
    environment,
    host_path_of,
    mount_at,
    mounts,
    orderflow_processes,
    orderflow_variables,
)

GRAFANA_DASHBOARDS = OPS / "grafana" / "provisioning" / "dashboards" / "orderflow.yml"


# --- files ------------------------------------------------------------------------------


def test_every_path_the_compose_file_names_exists(compose: dict[str, Any]) -> None:
    missing = []
    for name, service in compose["services"].items():
        for mount in mounts(service):
            if mount.is_bind and not mount.host_path.exists():
                missing.append(f"{name}: bind mount {mount.source}")
        env_files = service.get("env_file") or []
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = env_file if isinstance(env_file, str) else env_file["path"]
            if not (OPS / path).is_file():
                missing.append(f"{name}: env_file {path}")
        build = service.get("build")
        if isinstance(build, dict | str):
            build = {"context": build} if isinstance(build, str) else build
            context = OPS / build["context"]
            if not (context / build.get("dockerfile", "Dockerfile")).is_file():
                missing.append(f"{name}: build {build}")
    assert not missing, "\n".join(missing)


def test_the_postgres_init_script_creates_the_databases_the_services_use(
    compose: dict[str, Any],
) -> None:
    scripts = [
        mount.host_path
        for mount in mounts(compose["services"]["postgres"])
        if mount.is_bind and mount.target.startswith("/docker-entrypoint-initdb.d/")
    ]
    assert scripts, "postgres mounts no init script"
    sql = "\n".join(path.read_text(encoding="utf-8") for path in scripts)
    created = set(re.findall(r"CREATE DATABASE (\w+)", sql, re.I))
    used = {
        url.rsplit("/", 1)[-1]
        for service in compose["services"].values()
        for key, url in environment(service).items()
        if key.endswith("_DATABASE_URL")
    }
    assert used == {"orders", "invoices"}
    assert used <= created, f"{sorted(used - created)} are used but never created"


# --- orderflow services -----------------------------------------------------------------


def test_every_orderflow_process_has_its_service_and_runs_a_real_subcommand(
    compose: dict[str, Any],
) -> None:
    from ops.cli import _parser

    processes = orderflow_processes(compose)
    assert {name: s.get("command") for name, s in processes.items()} == PROCESSES
    for name, service in processes.items():
        try:
            _parser().parse_args(service["command"])
        except SystemExit:
            pytest.fail(f"{name}: `orderflow {' '.join(service['command'])}` does not parse")


def test_orderflow_services_set_only_variables_orderflow_reads(compose: dict[str, Any]) -> None:
    known = orderflow_variables()
    unknown = {
        f"{name}: {variable}"
        for name, service in orderflow_processes(compose).items()
        for variable in environment(service)
        if variable not in known
    }
    assert not unknown, f"variables orderflow never reads (typos?): {sorted(unknown)}"


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_each_orderflow_service_s_settings_load_from_its_environment(
    compose: dict[str, Any], name: str
) -> None:
    # Given the service's environment from .env.example filled in, When settings load,
    # Then they are accepted (a short JWT secret, or BROKER_URL without both databases,
    # would stop the process at start)
    Settings.from_env(environment(compose["services"][name]))


def test_a_service_refuses_to_start_with_the_example_jwt_secret_left_in(
    unfilled_compose: dict[str, Any],
) -> None:
    # Given .env.example copied to .env without replacing its placeholders
    signing = [
        service
        for service in orderflow_processes(unfilled_compose).values()
        if "ORDERFLOW_JWT_SECRET" in environment(service)
    ]
    assert signing, "no orderflow service verifies tokens"
    for service in signing:
        # When its settings load, Then it stops, naming the variable
        with pytest.raises(SettingsError, match="ORDERFLOW_JWT_SECRET still holds the placeholder"):
            Settings.from_env(environment(service))


def test_every_orderflow_image_service_uses_one_image(compose: dict[str, Any]) -> None:
    images = {s.get("image") for s in compose["services"].values() if builds_this_repository(s)}
    assert len(images) == 1 and None not in images, images


def test_every_other_image_is_pinned_to_a_release(compose: dict[str, Any]) -> None:
    # a moving tag (latest, or none) changes the stack under the tests' feet
    for name, service in compose["services"].items():
        if builds_this_repository(service):
            continue
        image = service["image"]
        tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
        assert re.match(r"v?\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"


# --- start order ------------------------------------------------------------------------


def test_every_orderflow_process_waits_for_the_migration_and_its_servers(
    compose: dict[str, Any],
) -> None:
    for name, service in orderflow_processes(compose).items():
        needs = depends_on(service)
        env = environment(service)
        if name == "migrate":
            assert needs.get("postgres") == "service_healthy", name
            continue
        assert needs.get("migrate") == "service_completed_successfully", name
        if "ORDERS_DATABASE_URL" in env:
            assert needs.get("postgres") == "service_healthy", name
        if "BROKER_URL" in env:
            assert needs.get("rabbitmq") == "service_healthy", name


def test_every_dependency_condition_can_be_met(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in depends_on(service).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            target = services[dependency]
            if condition == "service_healthy":
                assert "healthcheck" in target, f"{name} waits for {dependency}'s health"
            if condition == "service_completed_successfully":
                assert target.get("restart", "no") == "no", f"{dependency} is not a one-shot"


def test_the_services_start_in_an_order(compose: dict[str, Any]) -> None:
    graph = {name: set(depends_on(s)) for name, s in compose["services"].items()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"depends_on has a cycle: {exc.args[1]}")
    assert order.index("migrate") < order.index("orders") < order.index("kong")


def test_kong_reads_the_file_kong_render_writes(compose: dict[str, Any]) -> None:
    render, kong = compose["services"]["kong-render"], compose["services"]["kong"]
    assert depends_on(kong)["kong-render"] == "service_completed_successfully"
    written = render["command"][render["command"].index("--output") + 1]
    read = environment(kong)["KONG_DECLARATIVE_CONFIG"]
    writer, reader = mount_at(render, written), mount_at(kong, read)
    assert writer and reader and not writer.is_bind, "the render must land in a named volume"
    assert writer.source == reader.source, "kong-render and Kong mount different volumes"
    assert reader.read_only, "Kong's mount of the rendered secrets must be read-only"
    assert written.removeprefix(writer.target) == read.removeprefix(reader.target)
    # only Kong and the render see the rendered keys
    services = compose["services"]
    holders = {n for n, s in services.items() if any(m.source == writer.source for m in mounts(s))}
    assert holders == {"kong", "kong-render"}
    source = mount_at(render, render["command"][0])
    assert source and source.host_path == OPS / "kong", "kong-render renders ops/kong/kong.yaml"


# --- Prometheus and Grafana files -------------------------------------------------------


def test_prometheus_reads_ops_prometheus_and_its_rule_files(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    config_path = flag.partition("=")[2]
    config_file = host_path_of(prometheus, config_path)
    assert config_file == OPS / "prometheus" / "prometheus.yml", config_file
    rules = yaml.safe_load(config_file.read_text(encoding="utf-8"))["rule_files"]
    assert all((config_file.parent / rule).is_file() for rule in rules), rules


def test_grafana_finds_the_dashboards_where_the_provisioning_file_says(
    compose: dict[str, Any],
) -> None:
    grafana = compose["services"]["grafana"]
    provisioning = environment(grafana).get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning")
    assert host_path_of(grafana, provisioning) == OPS / "grafana" / "provisioning"
    providers = yaml.safe_load(GRAFANA_DASHBOARDS.read_text(encoding="utf-8"))["providers"]
    for provider in providers:
        path = provider["options"]["path"]
        assert host_path_of(grafana, path) == OPS / "grafana" / "dashboards", provider
