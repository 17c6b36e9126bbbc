"""The stack's sizes: a frozen dataclass read from ``Pulumi.<stack>.yaml`` with defaults.

Stack files hold sizes and switches only. Secrets never appear here: they are
generated (``credentials``) or put into Secrets Manager by an operator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pulumi

from ops.infra import containers

# Every long-running task: the application's processes (``containers``) and Kong.
PROCESSES = (*containers.PROCESSES, "kong")
BROKER_MODES = ("SINGLE_INSTANCE", "CLUSTER_MULTI_AZ")

# Fargate's valid memory sizes (MiB) for each CPU size (units of 1/1024 vCPU).
FARGATE_MEMORY = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
}


class ConfigError(ValueError):
    """A stack setting that cannot be deployed."""


@dataclasses.dataclass(frozen=True)
class TaskSize:
    """One process's Fargate task size and how many tasks run."""

    cpu: int = 256
    memory: int = 512
    count: int = 1

    def __post_init__(self) -> None:
        if self.memory not in FARGATE_MEMORY.get(self.cpu, ()):
            raise ConfigError(f"Fargate has no task of cpu {self.cpu} with memory {self.memory}")
        if self.count < 0:
            raise ConfigError("a task count cannot be negative")


@dataclasses.dataclass(frozen=True)
class DatabaseSize:
    """Each service's RDS PostgreSQL instance (orders and invoices are sized alike)."""

    instance_class: str = "db.t4g.micro"
    allocated_storage: int = 20
    max_allocated_storage: int = 50  # storage autoscaling ceiling (GiB)
    backup_retention_days: int = 1


@dataclasses.dataclass(frozen=True)
class BrokerSize:
    """The Amazon MQ for RabbitMQ broker."""

    instance_type: str = "mq.t3.micro"
    deployment_mode: str = "SINGLE_INSTANCE"

    def __post_init__(self) -> None:
        if self.deployment_mode not in BROKER_MODES:
            raise ConfigError(f"broker deploymentMode must be one of {', '.join(BROKER_MODES)}")


@dataclasses.dataclass(frozen=True)
class InfraConfig:
    """Everything that differs between stacks; the defaults are a small dev stack."""

    environment: str
    # The image tag the services run, and the one the migrate task runs (the release
    # about to be deployed; the services' by default). Until imageTag is set, the
    # services run no task: a new stack's schema does not exist before the first migrate.
    image_tag: str | None = None
    migrate_image_tag: str | None = None
    tasks: Mapping[str, TaskSize] = dataclasses.field(
        default_factory=lambda: {process: TaskSize() for process in PROCESSES}
    )
    database: DatabaseSize = DatabaseSize()
    broker: BrokerSize = BrokerSize()
    multi_az: bool = False  # RDS standby and a NAT gateway per zone
    deletion_protection: bool = False  # RDS and the load balancer; final DB snapshots
    vpc_cidr: str = "10.40.0.0/16"
    postgres_version: str = "17"
    rabbitmq_version: str = "3.13"
    kong_image: str = "kong:3.9.1"  # as ops/compose.yaml
    cpu_architecture: str = "X86_64"
    log_retention_days: int = 7
    access_log_expiry_days: int = 30
    certificate_arn: str | None = None
    require_https: bool = False

    def __post_init__(self) -> None:
        if not (self.image_tag or self.migrate_image_tag):
            raise ConfigError("set imageTag (or, before the first migrate, migrateImageTag)")
        missing = set(PROCESSES) - set(self.tasks)
        if missing:
            raise ConfigError(f"no task size for {', '.join(sorted(missing))}")
        if self.require_https and not self.certificate_arn:
            raise ConfigError("requireHttps is set: set certificateArn to the ACM certificate")

    @property
    def service_image_tag(self) -> str:
        """The tag the services' task definitions name."""
        return self.image_tag or self.migrate_image_tag or ""

    @property
    def migration_image_tag(self) -> str:
        """The tag the migrate task definition names."""
        return self.migrate_image_tag or self.image_tag or ""

    def desired_count(self, process: str) -> int:
        """How many tasks of ``process`` run: none before the first ``imageTag``."""
        return self.tasks[process].count if self.image_tag else 0

    @property
    def queue_type(self) -> str:
        """RabbitMQ queue type: quorum queues replicate across a cluster's nodes; on a
        single node they would only cost more, so a single broker keeps classic queues."""
        return "quorum" if self.broker.deployment_mode == "CLUSTER_MULTI_AZ" else "classic"

    @property
    def name(self) -> str:
        """The prefix of physical names: ``orderflow-<stack>``."""
        return f"orderflow-{self.environment}"


def from_pulumi(config: pulumi.Config, environment: str) -> InfraConfig:
    """The stack's configuration (keys ``orderflow:*``), defaults for what is not set."""
    tasks: dict[str, Any] = config.get_object("tasks") or {}
    unknown = set(tasks) - set(PROCESSES)
    if unknown:
        raise ConfigError(f"tasks: unknown processes {', '.join(sorted(unknown))}")
    defaults = InfraConfig(environment=environment, image_tag="unset")
    return InfraConfig(
        environment=environment,
        image_tag=config.get("imageTag") or None,
        migrate_image_tag=config.get("migrateImageTag") or None,
        tasks={process: TaskSize(**tasks.get(process, {})) for process in PROCESSES},
        database=_database(config.get_object("database") or {}),
        broker=_broker(config.get_object("broker") or {}),
        multi_az=config.get_bool("multiAz", defaults.multi_az),
        deletion_protection=config.get_bool("deletionProtection", defaults.deletion_protection),
        vpc_cidr=config.get("vpcCidr", defaults.vpc_cidr),
        postgres_version=config.get("postgresVersion", defaults.postgres_version),
        rabbitmq_version=config.get("rabbitmqVersion", defaults.rabbitmq_version),
        kong_image=config.get("kongImage", defaults.kong_image),
        cpu_architecture=config.get("cpuArchitecture", defaults.cpu_architecture),
        log_retention_days=config.get_int("logRetentionDays", defaults.log_retention_days),
        access_log_expiry_days=config.get_int(
            "accessLogExpiryDays", defaults.access_log_expiry_days
        ),
        certificate_arn=config.get("certificateArn") or None,
        require_https=config.get_bool("requireHttps", defaults.require_https),
    )


DATABASE_KEYS = {
    "instanceClass": "instance_class",
    "allocatedStorage": "allocated_storage",
    "maxAllocatedStorage": "max_allocated_storage",
    "backupRetentionDays": "backup_retention_days",
}
BROKER_KEYS = {"instanceType": "instance_type", "deploymentMode": "deployment_mode"}


def _database(raw: Mapping[str, Any]) -> DatabaseSize:
    return DatabaseSize(**_fields(raw, DATABASE_KEYS, "database"))


def _broker(raw: Mapping[str, Any]) -> BrokerSize:
    return BrokerSize(**_fields(raw, BROKER_KEYS, "broker"))


def _fields(raw: Mapping[str, Any], keys: Mapping[str, str], section: str) -> dict[str, Any]:
    """A section's stack keys as dataclass fields; a misspelt key is an error, not a default."""
    unknown = set(raw) - set(keys)
    if unknown:
        raise ConfigError(f"{section}: unknown keys {', '.join(sorted(unknown))}")
    return {keys[key]: value for key, value in raw.items()}
