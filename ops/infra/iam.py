"""Task execution roles: what ECS may do while starting a task, one role per task.

A role may pull from the one ECR repository, write to its task's log group and read
exactly the secrets its containers reference, so the orders worker's role, say,
cannot fetch the Kong-only values. The tasks themselves get no role: the
application calls no AWS API.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

ASSUME_ROLE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def execution_role(
    name: str,
    repository_arn: pulumi.Input[str],
    log_group_arn: pulumi.Input[str],
    secret_arns: Sequence[pulumi.Input[str]],
) -> pulumi.Output[str]:
    """A role for task ``name``'s execution; returns its ARN."""
    role = aws.iam.Role(
        f"{name}-execution",
        assume_role_policy=ASSUME_ROLE,
        description=f"ECS starts the orderflow {name} task",
    )
    policy = pulumi.Output.all(repository_arn, log_group_arn, *secret_arns).apply(
        lambda arns: json.dumps(execution_policy(arns[0], arns[1], arns[2:]))
    )
    aws.iam.RolePolicy(f"{name}-execution", role=role.id, policy=policy)
    return role.arn


def execution_policy(
    repository_arn: str, log_group_arn: str, secret_arns: Sequence[str]
) -> dict[str, Any]:
    """The policy document: pull the image, write the logs, read these secrets."""
    statements: list[dict[str, Any]] = [
        # GetAuthorizationToken takes no resource: it is account-wide by AWS's design.
        {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Resource": repository_arn,
        },
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{log_group_arn}:*",
        },
    ]
    if secret_arns:
        statements.append(
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": sorted(set(secret_arns)),
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}
