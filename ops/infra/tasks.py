"""Fargate task definitions, each with its log group and its execution role."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from ops.infra.config import InfraConfig, TaskSize
from ops.infra.iam import execution_role


class TaskFactory:
    """Task definitions of one stack; ``log`` a task before ``define``-ing it."""

    def __init__(
        self, config: InfraConfig, repository_arn: pulumi.Output[str], region: pulumi.Output[str]
    ) -> None:
        self.config, self.repository_arn, self.region = config, repository_arn, region
        self.groups: dict[str, aws.cloudwatch.LogGroup] = {}

    def log(self, name: str) -> dict[str, Any]:
        """The awslogs settings of task ``name``; creates its log group."""
        self.groups[name] = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/orderflow/{self.config.environment}/{name}",
            retention_in_days=self.config.log_retention_days,
        )
        return {"group": self.groups[name].name, "region": self.region}

    def define(
        self,
        name: str,
        containers: list[dict[str, Any]],
        size: TaskSize,
        volumes: Sequence[aws.ecs.TaskDefinitionVolumeArgs] = (),
    ) -> aws.ecs.TaskDefinition:
        """Task ``name`` on Fargate; its role reads exactly the secrets its containers name."""
        secret_arns = [item["valueFrom"] for c in containers for item in c.get("secrets", [])]
        role = execution_role(name, self.repository_arn, self.groups[name].arn, secret_arns)
        return aws.ecs.TaskDefinition(
            name,
            family=f"{self.config.name}-{name}",
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(size.cpu),
            memory=str(size.memory),
            execution_role_arn=role,
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture=self.config.cpu_architecture
            ),
            container_definitions=pulumi.Output.json_dumps(containers),
            volumes=list(volumes),
        )
