"""Stack configuration: what the stack files say, and what the program refuses."""

from __future__ import annotations

import pytest

from tests.infra import import_pulumi

import_pulumi()

from ops.infra.config import (  # noqa: E402
    PROCESSES,
    BrokerSize,
    ConfigError,
    InfraConfig,
    TaskSize,
    _database,
)
from tests.infra.harness import STACKS, deploy, run_entry_point, stack_file  # noqa: E402
from tests.infra.mocks import SERVICE  # noqa: E402


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_file_sizes_every_process_and_nothing_else(stack: str) -> None:
    assert sorted(stack_file(stack)["config"]["orderflow:tasks"]) == sorted(PROCESSES)


def test_prod_refuses_to_deploy_without_a_certificate() -> None:
    with pytest.raises(ConfigError, match="certificateArn"):
        deploy("prod", {"orderflow:certificateArn": ""})


def test_a_task_size_fargate_does_not_offer_is_refused() -> None:
    with pytest.raises(ConfigError, match="cpu 256 with memory 4096"):
        TaskSize(cpu=256, memory=4096)


def test_a_misspelt_key_is_refused_rather_than_defaulted() -> None:
    with pytest.raises(ConfigError, match="instanceClas"):
        _database({"instanceClas": "db.t4g.micro"})


def test_a_broker_mode_amazon_mq_rabbitmq_lacks_is_refused() -> None:
    with pytest.raises(ConfigError, match="deploymentMode"):
        BrokerSize(deployment_mode="ACTIVE_STANDBY_MULTI_AZ")


def test_a_process_without_a_size_is_refused() -> None:
    with pytest.raises(ConfigError, match="kong"):
        InfraConfig(
            environment="dev",
            image_tag="3f2a9c1",
            tasks={name: TaskSize() for name in PROCESSES if name != "kong"},
        )


def test_a_stack_without_any_image_tag_is_refused() -> None:
    with pytest.raises(ConfigError, match="imageTag"):
        InfraConfig(environment="dev")


def test_only_a_cluster_broker_gets_quorum_queues() -> None:
    single = InfraConfig(environment="dev", image_tag="t")
    cluster = InfraConfig(
        environment="prod", image_tag="t", broker=BrokerSize("mq.m5.large", "CLUSTER_MULTI_AZ")
    )

    assert (single.queue_type, cluster.queue_type) == ("classic", "quorum")


@pytest.mark.parametrize("stack", STACKS)
def test_the_entry_point_builds_the_stack_from_its_configuration(stack: str) -> None:
    # When Pulumi runs ops/infra/__main__.py with the stack file's configuration
    resources = run_entry_point(stack)

    # Then the whole stack is registered
    assert len([r for r in resources if r.type == SERVICE]) == len(PROCESSES)
