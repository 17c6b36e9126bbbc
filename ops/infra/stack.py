"""``build(config)``: the one place that creates the stack and wires its parts."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from ops.infra.config import InfraConfig
from ops.infra.credentials import token_secrets
from ops.infra.data import build_data
from ops.infra.edge import build_edge
from ops.infra.firewall import build_security_groups
from ops.infra.network import build_network
from ops.infra.registry import build_repository
from ops.infra.services import build_cluster


def build(config: InfraConfig) -> dict[str, Any]:
    """Every resource of the stack; returns the stack outputs by name (no secret among
    them: the secrets' ARNs at most)."""
    zones = aws.get_availability_zones(state="available").names
    network = build_network(config, zones)
    groups = build_security_groups(config, network)
    data = build_data(config, network, groups)
    secrets = {**data.secrets, **token_secrets(config)}
    edge = build_edge(config, network, groups)
    repository = build_repository(config)
    cluster = build_cluster(
        config, network, groups, secrets=secrets, repository=repository, edge=edge
    )
    scheme = "https" if config.certificate_arn else "http"
    migrate = cluster.migrate_task_definition
    return {
        "url": pulumi.Output.concat(scheme, "://", edge.dns_name),
        "repositoryUrl": repository.repository_url,
        "clusterName": cluster.name,
        "migrateTaskDefinition": migrate.arn,
        # `aws ecs run-task --network-configuration "$(pulumi stack output migrateNetwork)"`
        "migrateNetwork": pulumi.Output.json_dumps(
            {
                "awsvpcConfiguration": {
                    "subnets": network.private_subnet_ids,
                    "securityGroups": [groups["migrate"]],
                    "assignPublicIp": "DISABLED",
                }
            }
        ),
        "jwtPublicKeySecret": secrets["DECK_ORDERFLOW_JWT_PUBLIC_KEY"],
        "logsBucket": edge.logs_bucket,
        **{f"{name}Endpoint": endpoint for name, endpoint in data.endpoints.items()},
    }
