"""Pulumi mocks that record every resource and answer with plausible outputs."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pulumi

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ELB_ACCOUNT = "156460612806"

# Resource types, as Pulumi names them.
SERVICE = "aws:ecs/service:Service"
TASK = "aws:ecs/taskDefinition:TaskDefinition"
DATABASE = "aws:rds/instance:Instance"
BROKER = "aws:mq/broker:Broker"
REPOSITORY = "aws:ecr/repository:Repository"
BALANCER = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
BUCKET = "aws:s3/bucket:Bucket"
SUBNET = "aws:ec2/subnet:Subnet"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
PASSWORD = "random:index/randomPassword:RandomPassword"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"

CALLS = {
    "aws:index/getAvailabilityZones:getAvailabilityZones": {
        "id": REGION,
        "names": [f"{REGION}a", f"{REGION}b", f"{REGION}c"],
        "zoneIds": ["euw1-az1", "euw1-az2", "euw1-az3"],
    },
    "aws:index/getRegion:getRegion": {"id": REGION, "name": REGION, "region": REGION},
    "aws:index/getCallerIdentity:getCallerIdentity": {
        "id": ACCOUNT,
        "accountId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:user/deployer",
        "userId": "AIDAMOCK",
    },
    "aws:elb/getServiceAccount:getServiceAccount": {
        "id": ELB_ACCOUNT,
        "arn": f"arn:aws:iam::{ELB_ACCOUNT}:root",
    },
}


@dataclasses.dataclass(frozen=True)
class Recorded:
    """One resource as the program registered it."""

    type: str
    name: str
    inputs: dict[str, Any]
    id: str
    state: dict[str, Any]


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every resource; answers with plausible ids, ARNs and outputs."""

    def __init__(self) -> None:
        self.resources: list[Recorded] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        kind = args.typ.rsplit(":", 1)[-1].lower()
        resource_id = f"{kind}-{args.name}"
        state = {
            **args.inputs,
            "arn": f"arn:aws:{kind}:{REGION}:{ACCOUNT}:{args.name}",
            **_outputs(args.typ, args.name, args.inputs),
        }
        self.resources.append(Recorded(args.typ, args.name, args.inputs, resource_id, state))
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        if args.token not in CALLS:
            raise AssertionError(f"the program calls {args.token}, which the mocks do not know")
        return CALLS[args.token]


def generated_value(name: str, length: int) -> str:
    """The value the mocks give RandomPassword ``name``: recognisable, and different
    for each name, so a test can look for it where it must not be."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    return (digest * 4)[:length]


def _outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    if typ == PASSWORD:
        return {"result": generated_value(name, int(inputs["length"]))}
    if typ == REPOSITORY:
        return {"repositoryUrl": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{inputs['name']}"}
    if typ == DATABASE:
        address = f"{inputs['identifier']}.c0ffee.{REGION}.rds.amazonaws.com"
        return {"address": address, "port": 5432, "endpoint": f"{address}:5432"}
    if typ == BROKER:
        host = f"b-{name}.mq.{REGION}.on.aws"
        return {"instances": [{"endpoints": [f"amqps://{host}:5671"], "ipAddress": ""}]}
    if typ == BALANCER:
        return {"dnsName": f"{name}-1234.{REGION}.elb.amazonaws.com", "arnSuffix": name}
    if typ == BUCKET:
        return {"bucket": f"{inputs['bucketPrefix']}mock"}
    if typ == SECRET:
        return {"arn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{inputs['name']}-AbCdEf"}
    if typ == TASK:
        return {"arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{inputs['family']}:1"}
    return {}
