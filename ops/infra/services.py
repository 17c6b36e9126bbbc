"""The ECS cluster on Fargate, a task definition and service per process, and
the one-off migrate task definition.

Every application service runs the one image (``<repository>:<imageTag>``) with its
``orderflow`` subcommand, and Kong the kong image; the migrate task runs
``<migrateImageTag>``, the release about to go out (ops/infra/README.md: migrate, then
move the services). The fronts register under Service Connect names (``orders``,
``invoices``, ``gateway``), so Kong's upstream URLs and the gateway's
``ORDERS_URL``/``INVOICES_URL`` resolve inside the cluster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from ops.infra.config import InfraConfig, TaskSize
from ops.infra.containers import KONG_PROXY_PORT, MIGRATE, PROCESSES, Process, app_container
from ops.infra.edge import Edge
from ops.infra.kong import CONFIG_VOLUME, kong_containers
from ops.infra.network import Network
from ops.infra.tasks import TaskFactory


@dataclasses.dataclass(frozen=True)
class Cluster:
    """What operators need to run the migrate task."""

    name: pulumi.Output[str]
    migrate_task_definition: aws.ecs.TaskDefinition


def build_cluster(
    config: InfraConfig,
    network: Network,
    groups: Mapping[str, pulumi.Output[str]],
    *,
    secrets: Mapping[str, pulumi.Output[str]],
    repository: aws.ecr.Repository,
    edge: Edge,
) -> Cluster:
    """The cluster, its Service Connect namespace, and a service per process."""
    namespace = aws.servicediscovery.HttpNamespace("services", name=config.name)
    cluster = aws.ecs.Cluster(
        "cluster",
        name=config.name,
        settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
        service_connect_defaults=aws.ecs.ClusterServiceConnectDefaultsArgs(namespace=namespace.arn),
    )
    image = pulumi.Output.concat(repository.repository_url, ":", config.service_image_tag)
    region = aws.get_region_output().region
    tasks = TaskFactory(config, repository.arn, region)
    for process in PROCESSES.values():
        containers = [
            app_container(process, image, secrets, tasks.log(process.name), config.queue_type)
        ]
        task = tasks.define(process.name, containers, config.tasks[process.name])
        _service(
            config,
            process.name,
            task,
            cluster=cluster,
            network=network,
            groups=groups,
            connect=_connect(namespace, process),
        )
    kong_size = config.tasks["kong"]
    kong = tasks.define(
        "kong",
        kong_containers(
            image,
            kong_image=config.kong_image,
            secrets=secrets,
            log=tasks.log("kong"),
            cpu=kong_size.cpu,
            vpc_cidr=network.cidr,
        ),
        kong_size,
        volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=CONFIG_VOLUME)],
    )
    _service(
        config,
        "kong",
        kong,
        cluster=cluster,
        network=network,
        groups=groups,
        # A client only: Kong reaches the fronts by their Service Connect names.
        connect=aws.ecs.ServiceServiceConnectConfigurationArgs(
            enabled=True, namespace=namespace.arn
        ),
        load_balancers=[
            aws.ecs.ServiceLoadBalancerArgs(
                target_group_arn=edge.target_group_arn,
                container_name="kong",
                container_port=KONG_PROXY_PORT,
            )
        ],
        depends_on=edge.listeners,
    )
    release = pulumi.Output.concat(repository.repository_url, ":", config.migration_image_tag)
    migrate_containers = [
        app_container(MIGRATE, release, secrets, tasks.log(MIGRATE.name), config.queue_type)
    ]
    migrate = tasks.define(MIGRATE.name, migrate_containers, TaskSize())
    return Cluster(name=cluster.name, migrate_task_definition=migrate)


def _connect(
    namespace: aws.servicediscovery.HttpNamespace, process: Process
) -> aws.ecs.ServiceServiceConnectConfigurationArgs | None:
    """Fronts serve under their alias; the gateway calls the others by theirs too."""
    if process.alias is None or process.port is None:
        return None  # workers and relays call no one over HTTP
    alias = aws.ecs.ServiceServiceConnectConfigurationServiceClientAliasArgs(
        port=process.port, dns_name=process.alias
    )
    service = aws.ecs.ServiceServiceConnectConfigurationServiceArgs(
        port_name=process.alias, discovery_name=process.alias, client_alias=[alias]
    )
    return aws.ecs.ServiceServiceConnectConfigurationArgs(
        enabled=True, namespace=namespace.arn, services=[service]
    )


def _service(
    config: InfraConfig,
    name: str,
    task: aws.ecs.TaskDefinition,
    *,
    cluster: aws.ecs.Cluster,
    network: Network,
    groups: Mapping[str, pulumi.Output[str]],
    connect: aws.ecs.ServiceServiceConnectConfigurationArgs | None,
    load_balancers: Sequence[aws.ecs.ServiceLoadBalancerArgs] = (),
    depends_on: Sequence[pulumi.Resource] = (),
) -> aws.ecs.Service:
    return aws.ecs.Service(
        name,
        name=name,
        cluster=cluster.arn,
        task_definition=task.arn,
        desired_count=config.desired_count(name),
        launch_type="FARGATE",
        network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
            subnets=network.private_subnet_ids,
            security_groups=[groups[name]],
            assign_public_ip=False,
        ),
        # A deploy whose tasks keep failing stops and rolls back by itself.
        deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
            enable=True, rollback=True
        ),
        deployment_minimum_healthy_percent=100,
        deployment_maximum_percent=200,
        service_connect_configuration=connect,
        load_balancers=list(load_balancers),
        health_check_grace_period_seconds=60 if load_balancers else None,
        propagate_tags="SERVICE",
        enable_execute_command=False,
        opts=pulumi.ResourceOptions(depends_on=list(depends_on)),
    )
