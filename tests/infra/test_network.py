"""Only the load balancer faces the internet, and security groups allow exactly the
connections the system makes."""

from __future__ import annotations

from tests.infra import import_pulumi

import_pulumi()

from tests.infra.harness import Deployment  # noqa: E402
from tests.infra.mocks import (  # noqa: E402
    BALANCER,
    BROKER,
    DATABASE,
    EGRESS,
    INGRESS,
    SECURITY_GROUP,
    SUBNET,
    Recorded,
)

ANYWHERE = "0.0.0.0/0"
BROKER_USERS = ("orders-api", "invoices-api", "orders-worker", "invoices-worker")
BROKER_USERS += ("orders-relay", "invoices-relay", "audit-api")
# (destination, source, port): everything a group admits from another group
EXPECTED = {
    ("kong", "alb", 8000),
    ("kong", "alb", 8100),  # the target group's health check: /status/ready
    ("orders-api", "kong", 3333),
    ("invoices-api", "kong", 3334),
    ("gateway-api", "kong", 3000),
    ("orders-api", "gateway-api", 3333),
    ("invoices-api", "gateway-api", 3334),
    ("audit-api", "gateway-api", 3335),  # and not from Kong: the audit part is not routed
    *{("broker", user, 5671) for user in BROKER_USERS},
    *{
        ("orders-db", p, 5432)
        for p in ("orders-api", "orders-worker", "orders-relay", "audit-api", "migrate")
    },
    *{
        ("invoices-db", p, 5432)
        for p in ("invoices-api", "invoices-worker", "invoices-relay", "audit-api", "migrate")
    },
}


def test_only_the_load_balancer_is_internet_facing(deployed: Deployment) -> None:
    balancer = deployed.one(BALANCER)

    assert balancer.inputs["internal"] is False
    public = {s.id for s in deployed.of_type(SUBNET) if "public" in s.name}
    assert set(balancer.inputs["subnets"]) == public
    assert all(db.inputs["publiclyAccessible"] is False for db in deployed.of_type(DATABASE))
    assert deployed.one(BROKER).inputs["publiclyAccessible"] is False


def test_only_the_load_balancer_admits_the_internet_and_only_on_80_and_443(
    deployed: Deployment,
) -> None:
    open_rules = [
        rule for rule in deployed.of_type(INGRESS) if "referencedSecurityGroupId" not in rule.inputs
    ]

    assert {_group(deployed, rule) for rule in open_rules} == {"alb"}
    assert all(rule.inputs["cidrIpv4"] == ANYWHERE for rule in open_rules)
    ports = sorted((rule.inputs["fromPort"], rule.inputs["toPort"]) for rule in open_rules)
    assert ports == ([(80, 80), (443, 443)] if deployed.stack == "prod" else [(80, 80)])
    assert not any(group.inputs.get("ingress") for group in _groups(deployed))


def test_groups_admit_exactly_the_connections_the_system_makes(deployed: Deployment) -> None:
    admitted = {
        (_group(deployed, rule), _referenced(deployed, rule), rule.inputs["fromPort"])
        for rule in deployed.of_type(INGRESS)
        if "referencedSecurityGroupId" in rule.inputs
    }

    assert admitted == EXPECTED
    assert all(
        rule.inputs["fromPort"] == rule.inputs["toPort"] and rule.inputs["ipProtocol"] == "tcp"
        for rule in deployed.of_type(INGRESS)
    )


def test_each_allowed_connection_leaves_its_source_and_tasks_reach_aws_on_443(
    deployed: Deployment,
) -> None:
    leaving = {
        (_referenced(deployed, rule), _group(deployed, rule), rule.inputs["fromPort"])
        for rule in deployed.of_type(EGRESS)
        if "referencedSecurityGroupId" in rule.inputs
    }
    to_internet = {
        (_group(deployed, rule), rule.inputs["fromPort"], rule.inputs["toPort"])
        for rule in deployed.of_type(EGRESS)
        if "referencedSecurityGroupId" not in rule.inputs
    }

    assert leaving == EXPECTED
    assert {port for _, port, _ in to_internet} == {443}
    assert {group for group, _, _ in to_internet} == {
        "kong",
        "orders-api",
        "invoices-api",
        "gateway-api",
        "audit-api",
        "orders-worker",
        "invoices-worker",
        "orders-relay",
        "invoices-relay",
        "migrate",
    }


def _groups(deployed: Deployment) -> list[Recorded]:
    return deployed.of_type(SECURITY_GROUP)


def _group(deployed: Deployment, rule: Recorded) -> str:
    return deployed.by_id(rule.inputs["securityGroupId"]).name.removeprefix("sg-")


def _referenced(deployed: Deployment, rule: Recorded) -> str:
    return deployed.by_id(rule.inputs["referencedSecurityGroupId"]).name.removeprefix("sg-")
