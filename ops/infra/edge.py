"""The edge: the internet-facing load balancer in front of Kong.

With a certificate (``certificateArn``) port 80 only redirects to HTTPS on 443;
without one, port 80 forwards to Kong (a dev stack; prod sets ``requireHttps``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from ops.infra.bucket import ACCESS_LOG_PREFIX, build_logs_bucket
from ops.infra.config import InfraConfig
from ops.infra.containers import KONG_PROXY_PORT, KONG_STATUS_PORT
from ops.infra.network import Network

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclasses.dataclass(frozen=True)
class Edge:
    """What Kong's service needs of the load balancer, and what operators want to know."""

    target_group_arn: pulumi.Output[str]
    listeners: Sequence[pulumi.Resource]
    dns_name: pulumi.Output[str]
    logs_bucket: pulumi.Output[str]


def build_edge(
    config: InfraConfig, network: Network, groups: Mapping[str, pulumi.Output[str]]
) -> Edge:
    """The logs bucket, the load balancer in the public subnets, Kong's target group
    and the listeners."""
    bucket, policy = build_logs_bucket(config)
    balancer = aws.lb.LoadBalancer(
        "alb",
        internal=False,
        load_balancer_type="application",
        subnets=network.public_subnet_ids,
        security_groups=[groups["alb"]],
        drop_invalid_header_fields=True,
        enable_deletion_protection=config.deletion_protection,
        access_logs=aws.lb.LoadBalancerAccessLogsArgs(
            bucket=bucket.bucket, prefix=ACCESS_LOG_PREFIX, enabled=True
        ),
        # The load balancer checks it may write to the bucket when it is created.
        opts=pulumi.ResourceOptions(depends_on=[policy]),
    )
    kong = aws.lb.TargetGroup(
        "kong",
        port=KONG_PROXY_PORT,
        protocol="HTTP",
        target_type="ip",  # Fargate tasks register by address
        vpc_id=network.vpc_id,
        deregistration_delay=30,
        health_check=aws.lb.TargetGroupHealthCheckArgs(
            # Kong's readiness: 200 once the declarative configuration is loaded.
            path="/status/ready",
            port=str(KONG_STATUS_PORT),
            protocol="HTTP",
            matcher="200",
            interval=15,
            healthy_threshold=2,
            unhealthy_threshold=3,
        ),
    )
    forward = aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=kong.arn)
    redirect = aws.lb.ListenerDefaultActionArgs(
        type="redirect",
        redirect=aws.lb.ListenerDefaultActionRedirectArgs(
            protocol="HTTPS", port="443", status_code="HTTP_301"
        ),
    )
    # Port 80 forwards to Kong, or redirects to 443 once there is a certificate.
    listeners = [
        aws.lb.Listener(
            "http",
            load_balancer_arn=balancer.arn,
            port=80,
            protocol="HTTP",
            default_actions=[redirect if config.certificate_arn else forward],
        )
    ]
    if config.certificate_arn:
        listeners.append(
            aws.lb.Listener(
                "https",
                load_balancer_arn=balancer.arn,
                port=443,
                protocol="HTTPS",
                ssl_policy=TLS_POLICY,
                certificate_arn=config.certificate_arn,
                default_actions=[forward],
            )
        )
    return Edge(
        target_group_arn=kong.arn,
        listeners=listeners,
        dns_name=balancer.dns_name,
        logs_bucket=bucket.bucket,
    )
