"""The VPC: public subnets for the load balancer only, private subnets for everything
else, NAT for the private subnets' egress; two availability zones."""

from __future__ import annotations

import dataclasses
import ipaddress

import pulumi
import pulumi_aws as aws

from ops.infra.config import InfraConfig

ZONES = 2
SUBNET_PREFIX = 20  # 4096 addresses each: Fargate takes one per task


@dataclasses.dataclass(frozen=True)
class Network:
    """What the other modules need of the VPC."""

    vpc_id: pulumi.Output[str]
    cidr: str
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]


def build_network(config: InfraConfig, zones: list[str]) -> Network:
    """A VPC over the first two of ``zones``. Private subnets route to the internet through
    NAT (image pulls, Secrets Manager, CloudWatch Logs): one gateway per zone when the stack
    is multi-AZ, so losing a zone does not cut the other's egress, else one shared."""
    if len(zones) < ZONES:
        raise ValueError(f"the region offers {len(zones)} availability zones, {ZONES} needed")
    zones = zones[:ZONES]
    vpc = aws.ec2.Vpc(
        "vpc",
        cidr_block=config.vpc_cidr,
        enable_dns_support=True,
        enable_dns_hostnames=True,  # RDS and Amazon MQ endpoints resolve by name
        tags=_name(config, "vpc"),
    )
    public_cidrs, private_cidrs = _cidrs(config.vpc_cidr)
    public = [
        _subnet(config, vpc, f"public-{zone}", zone, cidr)
        for zone, cidr in zip(zones, public_cidrs, strict=True)
    ]
    private = [
        _subnet(config, vpc, f"private-{zone}", zone, cidr)
        for zone, cidr in zip(zones, private_cidrs, strict=True)
    ]
    gateway = aws.ec2.InternetGateway("igw", vpc_id=vpc.id, tags=_name(config, "igw"))
    public_routes = aws.ec2.RouteTable(
        "public-routes",
        vpc_id=vpc.id,
        routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
        tags=_name(config, "public"),
    )
    for zone, subnet in zip(zones, public, strict=True):
        aws.ec2.RouteTableAssociation(
            f"public-{zone}", subnet_id=subnet.id, route_table_id=public_routes.id
        )
    nats = [
        _nat(config, zone, subnet)
        for zone, subnet in zip(zones, public if config.multi_az else public[:1], strict=False)
    ]
    for index, (zone, subnet) in enumerate(zip(zones, private, strict=True)):
        nat = nats[index % len(nats)]
        routes = aws.ec2.RouteTable(
            f"private-routes-{zone}",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
            tags=_name(config, f"private-{zone}"),
        )
        aws.ec2.RouteTableAssociation(
            f"private-{zone}", subnet_id=subnet.id, route_table_id=routes.id
        )
    return Network(
        vpc_id=vpc.id,
        cidr=config.vpc_cidr,
        public_subnet_ids=[subnet.id for subnet in public],
        private_subnet_ids=[subnet.id for subnet in private],
    )


def _cidrs(vpc_cidr: str) -> tuple[list[str], list[str]]:
    """Public subnets at the start of the VPC's range, private ones in its second half."""
    blocks = list(ipaddress.ip_network(vpc_cidr).subnets(new_prefix=SUBNET_PREFIX))
    half = len(blocks) // 2
    public = [str(block) for block in blocks[:ZONES]]
    private = [str(block) for block in blocks[half : half + ZONES]]
    return public, private


def _subnet(
    config: InfraConfig, vpc: aws.ec2.Vpc, name: str, zone: str, cidr: str
) -> aws.ec2.Subnet:
    # No subnet hands out public addresses: only the load balancer and NAT have any.
    return aws.ec2.Subnet(
        name,
        vpc_id=vpc.id,
        availability_zone=zone,
        cidr_block=cidr,
        map_public_ip_on_launch=False,
        tags=_name(config, name),
    )


def _nat(config: InfraConfig, zone: str, subnet: aws.ec2.Subnet) -> aws.ec2.NatGateway:
    address = aws.ec2.Eip(f"nat-{zone}", domain="vpc", tags=_name(config, f"nat-{zone}"))
    return aws.ec2.NatGateway(
        f"nat-{zone}",
        allocation_id=address.id,
        subnet_id=subnet.id,
        tags=_name(config, f"nat-{zone}"),
    )


def _name(config: InfraConfig, suffix: str) -> dict[str, str]:
    return {"Name": f"{config.name}-{suffix}"}
