"""The ECS services run what the application expects: the one image, the right
``orderflow`` subcommand (parsed by ops/cli.py's own parser), on the ports of
``ops.settings.Settings`` and under the names Kong's upstream URLs use."""

from __future__ import annotations

from urllib.parse import urlsplit

import yaml

from tests.infra import import_pulumi

import_pulumi()

from ops.cli import _parser  # noqa: E402
from ops.settings import Settings  # noqa: E402
from tests.infra.harness import IMAGE_TAG, KONG_YAML, Deployment, deploy  # noqa: E402
from tests.infra.mocks import REPOSITORY, SERVICE, SUBNET, TARGET_GROUP, Recorded  # noqa: E402

COMMANDS = {
    "orders-api": ("serve", "orders"),
    "invoices-api": ("serve", "invoices"),
    "gateway-api": ("serve", "gateway"),
    "audit-api": ("serve", "audit"),
    "orders-worker": ("worker", "orders"),
    "invoices-worker": ("worker", "invoices"),
    "orders-relay": ("relay", "orders"),
    "invoices-relay": ("relay", "invoices"),
}
# Kong's upstream host -> the process serving it
UPSTREAMS = {"orders": "orders-api", "invoices": "invoices-api", "gateway": "gateway-api"}


def test_every_application_service_runs_the_one_ecr_image_at_the_deployed_tag(
    deployed: Deployment,
) -> None:
    image = f"{deployed.one(REPOSITORY).state['repositoryUrl']}:{IMAGE_TAG}"

    for name in COMMANDS:
        assert _container(deployed, name)["image"] == image


def test_every_application_service_runs_its_orderflow_subcommand(deployed: Deployment) -> None:
    for name, (command, service) in COMMANDS.items():
        container = _container(deployed, name)
        assert container["entryPoint"] == ["orderflow"]

        # ops/cli.py's parser: a renamed subcommand or service exits here
        args = _parser().parse_args(container["command"])

        assert (args.command, args.service) == (command, service)


def test_kong_runs_the_kong_image_db_less_once_its_file_is_rendered(deployed: Deployment) -> None:
    task = deployed.task_of(_service(deployed, "kong"))
    render, kong = deployed.containers(task)
    image = f"{deployed.one(REPOSITORY).state['repositoryUrl']}:{IMAGE_TAG}"

    assert kong["image"].startswith("kong:3.9")
    environment = {item["name"]: item["value"] for item in kong["environment"]}
    assert environment["KONG_DATABASE"] == "off"
    assert environment["KONG_ADMIN_LISTEN"] == "off"
    assert kong["dependsOn"] == [{"containerName": render["name"], "condition": "SUCCESS"}]
    assert render["image"] == image
    assert render["essential"] is False


def test_container_ports_are_the_settings_defaults_and_kong_s_upstream_urls(
    deployed: Deployment,
) -> None:
    defaults = Settings()
    kong = yaml.safe_load(KONG_YAML.read_text(encoding="utf-8"))

    for upstream in kong["services"]:
        url = urlsplit(upstream["url"])
        process = UPSTREAMS[url.hostname]
        (published,) = _service(deployed, process).inputs["serviceConnectConfiguration"]["services"]
        (alias,) = published["clientAlias"]
        (mapping,) = _container(deployed, process)["portMappings"]

        assert (alias["dnsName"], alias["port"]) == (url.hostname, url.port)
        assert mapping["containerPort"] == url.port == defaults.port(url.hostname)
        assert mapping["name"] == published["portName"]


def test_the_gateway_reaches_the_services_by_the_names_kong_uses(deployed: Deployment) -> None:
    environment = {
        item["name"]: item["value"] for item in _container(deployed, "gateway-api")["environment"]
    }
    kong = yaml.safe_load(KONG_YAML.read_text(encoding="utf-8"))
    urls = {service["name"]: service["url"] for service in kong["services"]}

    assert environment["ORDERS_URL"] == urls["orders"]
    assert environment["INVOICES_URL"] == urls["invoices"]
    assert environment["AUDIT_URL"] == "http://audit:3335"  # not in Kong: not routed


def test_the_audit_part_reads_both_databases_and_the_broker_and_only_the_gateway_reaches_it(
    deployed: Deployment,
) -> None:
    container = _container(deployed, "audit-api")
    assert container["entryPoint"] + container["command"] == ["orderflow", "serve", "audit"]
    secrets = {item["name"] for item in container["secrets"]}
    assert secrets == {
        "ORDERS_DATABASE_URL",
        "INVOICES_DATABASE_URL",
        "BROKER_URL",
        "ORDERFLOW_JWT_SECRET",
    }


def test_fronts_listen_on_every_address_of_their_task(deployed: Deployment) -> None:
    for name in ("orders-api", "invoices-api", "gateway-api", "audit-api"):
        environment = {i["name"]: i["value"] for i in _container(deployed, name)["environment"]}
        assert environment["ORDERFLOW_HOST"] == "0.0.0.0"


def test_no_service_gets_a_public_address_or_leaves_the_private_subnets(
    deployed: Deployment,
) -> None:
    private = {s.id for s in deployed.of_type(SUBNET) if "private" in s.name}

    for service in deployed.of_type(SERVICE):
        network = service.inputs["networkConfiguration"]
        assert network.get("assignPublicIp") is not True
        assert set(network["subnets"]) == private
        assert service.inputs["launchType"] == "FARGATE"


def test_only_kong_sits_behind_the_load_balancer_on_its_proxy_port(deployed: Deployment) -> None:
    behind = {
        service.inputs["name"]: service.inputs["loadBalancers"]
        for service in deployed.of_type(SERVICE)
        if service.inputs.get("loadBalancers")
    }
    target = deployed.one(TARGET_GROUP)

    assert list(behind) == ["kong"]
    (attachment,) = behind["kong"]
    assert attachment["containerName"] == "kong"
    assert attachment["containerPort"] == target.inputs["port"] == 8000
    assert attachment["targetGroupArn"] == target.state["arn"]
    assert target.inputs["targetType"] == "ip"


def test_queues_are_quorum_on_the_prod_cluster_and_classic_on_the_dev_broker(
    deployed: Deployment,
) -> None:
    expected = "quorum" if deployed.stack == "prod" else "classic"

    for name in COMMANDS:
        environment = {i["name"]: i["value"] for i in _container(deployed, name)["environment"]}
        assert environment["RABBITMQ_QUEUE_TYPE"] == expected
        assert environment["LOG_FORMAT"] == "json"


def test_a_release_is_migrated_by_its_own_tag_while_the_services_keep_theirs() -> None:
    # Given a deploy that sets only migrateImageTag to the new release
    deployment = deploy("dev", {"orderflow:migrateImageTag": "new-release"})

    # Then the migrate task runs the release and every service still runs imageTag
    (migrate,) = deployment.containers(
        deployment.by_arn(deployment.outputs["migrateTaskDefinition"])
    )
    assert migrate["image"].endswith(":new-release")
    for name in COMMANDS:
        assert _container(deployment, name)["image"].endswith(f":{IMAGE_TAG}")


def test_before_the_first_image_tag_the_services_run_no_task() -> None:
    # Given a new stack deployed with only the release to migrate
    deployment = deploy("dev", {"orderflow:imageTag": "", "orderflow:migrateImageTag": "first"})

    # Then every service exists with no task (the schema does not exist yet)
    services = deployment.of_type(SERVICE)
    assert len(services) == len(COMMANDS) + 1
    assert {service.inputs["desiredCount"] for service in services} == {0}


def _service(deployed: Deployment, name: str) -> Recorded:
    (service,) = [s for s in deployed.of_type(SERVICE) if s.inputs["name"] == name]
    return service


def _container(deployed: Deployment, name: str) -> dict:
    (container,) = deployed.containers(deployed.task_of(_service(deployed, name)))
    return container
