"""Every resource the brief asks for exists, once per stack file, sized by it."""

from __future__ import annotations

from tests.infra import import_pulumi

import_pulumi()

from tests.infra.harness import Deployment, stack_file  # noqa: E402
from tests.infra.mocks import BALANCER, BROKER, BUCKET, DATABASE, REPOSITORY, SERVICE, SUBNET, TASK  # noqa: E402

PROCESSES = {
    "orders-api",
    "invoices-api",
    "gateway-api",
    "audit-api",
    "orders-worker",
    "invoices-worker",
    "orders-relay",
    "invoices-relay",
    "kong",
}


def test_every_process_runs_as_exactly_one_ecs_service(deployed: Deployment) -> None:
    names = [service.inputs["name"] for service in deployed.of_type(SERVICE)]

    assert sorted(names) == sorted(PROCESSES)


def test_each_service_has_its_own_postgresql_database(deployed: Deployment) -> None:
    databases = deployed.of_type(DATABASE)

    assert sorted(db.inputs["dbName"] for db in databases) == ["invoices", "orders"]
    assert {db.inputs["engine"] for db in databases} == {"postgres"}
    assert all(
        db.inputs["identifier"].startswith(f"orderflow-{deployed.stack}-") for db in databases
    )


def test_there_is_one_rabbitmq_broker_repository_load_balancer_and_logs_bucket(
    deployed: Deployment,
) -> None:
    assert deployed.one(BROKER).inputs["engineType"] == "RabbitMQ"
    assert deployed.one(REPOSITORY).inputs["name"] == f"orderflow-{deployed.stack}"
    assert deployed.one(BALANCER).inputs["loadBalancerType"] == "application"
    assert deployed.one(BUCKET).inputs["bucketPrefix"].startswith(f"orderflow-{deployed.stack}-")


def test_the_migrate_task_is_defined_for_operators_and_no_service_runs_it(
    deployed: Deployment,
) -> None:
    # Given the migrate task definition named by the stack outputs
    migrate = deployed.by_arn(deployed.outputs["migrateTaskDefinition"])

    # Then it runs `orderflow migrate`, and no service keeps it running
    (container,) = deployed.containers(migrate)
    assert container["entryPoint"] + container["command"] == ["orderflow", "migrate"]
    assert migrate.type == TASK
    assert all(
        s.inputs["taskDefinition"] != migrate.state["arn"] for s in deployed.of_type(SERVICE)
    )
    assert "migrateNetwork" in deployed.outputs


def test_the_vpc_has_a_public_and_a_private_subnet_in_each_of_two_zones(
    deployed: Deployment,
) -> None:
    subnets = deployed.of_type(SUBNET)

    zones = {subnet.inputs["availabilityZone"] for subnet in subnets}
    assert len(zones) == 2
    assert sorted(s.name.split("-", 1)[0] for s in subnets) == ["private"] * 2 + ["public"] * 2
    assert not any(subnet.inputs.get("mapPublicIpOnLaunch") for subnet in subnets)


def test_private_subnets_leave_through_nat_one_per_zone_only_in_prod(deployed: Deployment) -> None:
    nats = deployed.of_type("aws:ec2/natGateway:NatGateway")

    assert len(nats) == (2 if deployed.stack == "prod" else 1)
    public = {deployed.named(SUBNET, n).id for n in _names(deployed, "public")}
    assert all(nat.inputs["subnetId"] in public for nat in nats)


def test_task_sizes_and_counts_are_the_stack_file_s(deployed: Deployment) -> None:
    sizes = stack_file(deployed.stack)["config"]["orderflow:tasks"]

    for service in deployed.of_type(SERVICE):
        task = deployed.task_of(service)
        size = sizes[service.inputs["name"]]
        assert int(task.inputs["cpu"]) == size["cpu"]
        assert int(task.inputs["memory"]) == size["memory"]
        assert service.inputs["desiredCount"] == size["count"]


def test_databases_and_broker_are_sized_by_the_stack_file(deployed: Deployment) -> None:
    config = stack_file(deployed.stack)["config"]
    database, broker = config["orderflow:database"], config["orderflow:broker"]

    for db in deployed.of_type(DATABASE):
        assert db.inputs["instanceClass"] == database["instanceClass"]
        assert db.inputs["allocatedStorage"] == database["allocatedStorage"]
        assert db.inputs["backupRetentionPeriod"] == database["backupRetentionDays"] > 0
    assert deployed.one(BROKER).inputs["hostInstanceType"] == broker["instanceType"]
    assert deployed.one(BROKER).inputs["deploymentMode"] == broker["deploymentMode"]


def _names(deployed: Deployment, prefix: str) -> list[str]:
    subnets = deployed.of_type(SUBNET)
    return [subnet.name for subnet in subnets if subnet.name.startswith(prefix)]
