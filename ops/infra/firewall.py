"""Security groups: every allowed connection, listed once in :func:`flows`.

A group per role (the load balancer, Kong, each process, the migrate task, the
broker and each database). Each flow becomes an egress rule on its source and an
ingress rule on its destination, referencing groups rather than addresses, so
nothing else inbound is allowed: the load balancer is the only group open to the
internet (80, and 443 when a certificate is configured). Tasks may leave through
NAT on 443 only, for ECR, Secrets Manager and CloudWatch Logs.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from ops.infra.config import InfraConfig
from ops.infra.containers import (
    BROKER_PORT,
    DATABASE_PORT,
    KONG_PROXY_PORT,
    KONG_STATUS_PORT,
    MIGRATE,
    PROCESSES,
    SERVICES,
)
from ops.infra.network import Network

ANYWHERE = "0.0.0.0/0"
TASKS = ("kong", *PROCESSES, MIGRATE.name)
ROLES = ("alb", *TASKS, "broker", *(f"{service}-db" for service in SERVICES))


def flows() -> list[tuple[str, str, int]]:
    """``(source, destination, port)`` for every connection between groups."""
    allowed = [("alb", "kong", KONG_PROXY_PORT), ("alb", "kong", KONG_STATUS_PORT)]
    fronts = [process for process in PROCESSES.values() if process.port is not None]
    allowed += [("kong", front.name, front.port) for front in fronts if front.port and front.routed]
    allowed += [
        ("gateway-api", front.name, front.port)
        for front in fronts
        if front.port and front.name != "gateway-api"
    ]
    allowed += [(p.name, "broker", BROKER_PORT) for p in PROCESSES.values() if p.broker]
    allowed += [
        (p.name, f"{database}-db", DATABASE_PORT)
        for p in PROCESSES.values()
        for database in p.databases
    ]
    allowed += [(MIGRATE.name, f"{service}-db", DATABASE_PORT) for service in SERVICES]
    return allowed


def public_ports(config: InfraConfig) -> list[int]:
    """The load balancer's listener ports: 443 only exists with a certificate."""
    return [80, 443] if config.certificate_arn else [80]


def build_security_groups(config: InfraConfig, network: Network) -> dict[str, pulumi.Output[str]]:
    """A security group per role with the rules of :func:`flows`; returns their ids."""
    groups = {
        role: aws.ec2.SecurityGroup(
            f"sg-{role}",
            vpc_id=network.vpc_id,
            description=f"orderflow {role}",
            # No inline rules: the provider removes AWS's default allow-all egress,
            # and every rule below is its own resource.
            tags={"Name": f"{config.name}-{role}"},
        ).id
        for role in ROLES
    }
    for source, destination, port in flows():
        aws.vpc.SecurityGroupEgressRule(
            f"{source}-to-{destination}-{port}",
            security_group_id=groups[source],
            referenced_security_group_id=groups[destination],
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{destination}-from-{source}-{port}",
            security_group_id=groups[destination],
            referenced_security_group_id=groups[source],
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
        )
    for port in public_ports(config):
        aws.vpc.SecurityGroupIngressRule(
            f"alb-from-internet-{port}",
            security_group_id=groups["alb"],
            cidr_ipv4=ANYWHERE,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
        )
    for task in TASKS:
        aws.vpc.SecurityGroupEgressRule(
            f"{task}-to-aws-apis-443",
            security_group_id=groups[task],
            cidr_ipv4=ANYWHERE,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
        )
    return groups
