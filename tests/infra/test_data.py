"""The data tier stays private, encrypted and backed up; prod is multi-AZ and
protected, dev is neither."""

from __future__ import annotations

from tests.infra import import_pulumi

import_pulumi()

from tests.infra.harness import Deployment  # noqa: E402
from tests.infra.mocks import BALANCER, BROKER, DATABASE, SUBNET  # noqa: E402


def test_databases_are_private_encrypted_and_backed_up(deployed: Deployment) -> None:
    for database in deployed.of_type(DATABASE):
        assert database.inputs["publiclyAccessible"] is False
        assert database.inputs["storageEncrypted"] is True
        assert database.inputs["backupRetentionPeriod"] >= 1
        (group,) = database.inputs["vpcSecurityGroupIds"]
        assert deployed.by_id(group).name == f"sg-{database.inputs['dbName']}-db"


def test_prod_databases_are_multi_az_and_protected_and_dev_ones_are_not(
    deployed: Deployment,
) -> None:
    prod = deployed.stack == "prod"

    for database in deployed.of_type(DATABASE):
        assert database.inputs["multiAz"] is prod
        assert database.inputs["deletionProtection"] is prod
        assert database.inputs["skipFinalSnapshot"] is not prod
    assert deployed.one(BALANCER).inputs["enableDeletionProtection"] is prod


def test_the_broker_is_private_single_in_dev_and_a_cluster_in_prod(deployed: Deployment) -> None:
    broker = deployed.one(BROKER)

    assert broker.inputs["publiclyAccessible"] is False
    private = {s.id for s in deployed.of_type(SUBNET) if "private" in s.name}
    assert set(broker.inputs["subnetIds"]) <= private
    if deployed.stack == "prod":
        assert broker.inputs["deploymentMode"] == "CLUSTER_MULTI_AZ"
    else:
        assert broker.inputs["deploymentMode"] == "SINGLE_INSTANCE"
        assert len(broker.inputs["subnetIds"]) == 1
