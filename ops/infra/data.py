"""The data tier: an RDS PostgreSQL per service and Amazon MQ for RabbitMQ, in the
private subnets, and the URL secrets the application reads.

Master passwords come from pulumi_random rather than ``manage_master_user_password``:
the application wants one ``postgresql://`` URL, which is built here from the
password as a secret Output. RDS-managed passwords rotate inside RDS's own secret,
and a URL copied from one would go stale at the first rotation.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

import pulumi
import pulumi_aws as aws

from ops.infra.config import InfraConfig
from ops.infra.containers import BROKER_PORT, SERVICES
from ops.infra.credentials import generated, stored
from ops.infra.network import Network

BROKER_USER = "orderflow"


@dataclasses.dataclass(frozen=True)
class Data:
    """Secret ARNs by environment variable, and endpoints worth printing."""

    secrets: dict[str, pulumi.Output[str]]
    endpoints: dict[str, pulumi.Output[str]]


def build_data(
    config: InfraConfig, network: Network, groups: dict[str, pulumi.Output[str]]
) -> Data:
    """Both databases and the broker, with ``<SERVICE>_DATABASE_URL`` and ``BROKER_URL``."""
    subnets = aws.rds.SubnetGroup(
        "databases", subnet_ids=network.private_subnet_ids, description="orderflow databases"
    )
    secrets, endpoints = {}, {}
    for service in SERVICES:
        database = _database(config, service, subnets, groups[f"{service}-db"])
        secrets[f"{service.upper()}_DATABASE_URL"] = stored(
            config,
            f"{service}-database-url",
            database["url"],
            f"PostgreSQL URL of the {service} database (master user)",
        )
        endpoints[f"{service}Database"] = database["address"]
    broker_url, broker_endpoint = _broker(config, network, groups["broker"])
    secrets["BROKER_URL"] = stored(config, "broker-url", broker_url, "Amazon MQ AMQPS URL")
    endpoints["broker"] = broker_endpoint
    return Data(secrets=secrets, endpoints=endpoints)


def _database(
    config: InfraConfig, service: str, subnets: aws.rds.SubnetGroup, group: pulumi.Output[str]
) -> dict[str, pulumi.Output[str]]:
    password = generated(f"{service}-db-password")
    protected = config.deletion_protection
    instance = aws.rds.Instance(
        f"{service}-db",
        identifier=f"{config.name}-{service}",
        engine="postgres",
        engine_version=config.postgres_version,
        instance_class=config.database.instance_class,
        allocated_storage=config.database.allocated_storage,
        max_allocated_storage=config.database.max_allocated_storage,
        storage_type="gp3",
        storage_encrypted=True,
        db_name=service,
        username=service,
        password=password,
        db_subnet_group_name=subnets.name,
        vpc_security_group_ids=[group],
        publicly_accessible=False,
        multi_az=config.multi_az,
        deletion_protection=protected,
        backup_retention_period=config.database.backup_retention_days,
        backup_window="02:00-03:00",
        maintenance_window="sun:03:30-sun:04:30",
        copy_tags_to_snapshot=True,
        skip_final_snapshot=not protected,
        final_snapshot_identifier=f"{config.name}-{service}-final" if protected else None,
        auto_minor_version_upgrade=True,
        apply_immediately=not protected,  # prod waits for the maintenance window
        enabled_cloudwatch_logs_exports=["postgresql"],
    )
    # RDS for PostgreSQL 15+ forces TLS (rds.force_ssl); `require` encrypts without
    # verifying the server, which would need the RDS CA bundle in the image.
    url = pulumi.Output.format(
        "postgresql://{0}:{1}@{2}:{3}/{4}?sslmode=require",
        service,
        password,
        instance.address,
        instance.port,
        service,
    )
    return {"url": url, "address": instance.address}


def _broker(
    config: InfraConfig, network: Network, group: pulumi.Output[str]
) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """The broker; returns its ``BROKER_URL`` (a secret Output) and its endpoint."""
    password = generated("broker-password", 32)
    cluster = config.broker.deployment_mode == "CLUSTER_MULTI_AZ"
    broker = aws.mq.Broker(
        "broker",
        broker_name=config.name,
        engine_type="RabbitMQ",
        engine_version=config.rabbitmq_version,
        host_instance_type=config.broker.instance_type,
        deployment_mode=config.broker.deployment_mode,
        publicly_accessible=False,
        # A single instance lives in one subnet; a cluster spreads its three nodes.
        subnet_ids=network.private_subnet_ids if cluster else network.private_subnet_ids[:1],
        security_groups=[group],
        auto_minor_version_upgrade=True,  # required for RabbitMQ 3.13 on Amazon MQ
        users=[aws.mq.BrokerUserArgs(username=BROKER_USER, password=password)],
        logs=aws.mq.BrokerLogsArgs(general=True),
        maintenance_window_start_time=aws.mq.BrokerMaintenanceWindowStartTimeArgs(
            day_of_week="SUNDAY", time_of_day="04:30", time_zone="UTC"
        ),
        apply_immediately=not config.deletion_protection,
    )
    endpoint = broker.instances.apply(lambda instances: instances[0].endpoints[0])
    url = pulumi.Output.all(endpoint, password).apply(lambda args: broker_url(*args))
    return pulumi.Output.secret(url), endpoint


def broker_url(endpoint: str, password: str) -> str:
    """``amqps://user:password@host:5671/%2F`` from the broker's ``amqps://host:port``
    endpoint (the default vhost ``/``; the password is alphanumeric, so no escaping)."""
    netloc = urlsplit(endpoint).netloc or f"{endpoint}:{BROKER_PORT}"
    return f"amqps://{BROKER_USER}:{password}@{netloc}/%2F"
