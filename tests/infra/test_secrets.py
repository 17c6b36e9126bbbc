"""Secrets stay secret: generated values live only in secret inputs and Secrets
Manager, tasks receive them by ARN, each execution role reads exactly its task's,
and no stack file holds one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from tests.infra import import_pulumi

import_pulumi()

from tests.infra.harness import INFRA, STACKS, Deployment, stack_file  # noqa: E402
from tests.infra.mocks import (  # noqa: E402
    BROKER,
    DATABASE,
    PASSWORD,
    ROLE_POLICY,
    SECRET,
    SECRET_VERSION,
    TASK,
    generated_value,
)

# How Pulumi marks a secret value in a resource's inputs.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|KEY|TOKEN|DATABASE_URL|BROKER_URL", re.IGNORECASE)
CREDENTIALS_IN_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
RANDOM_LOOKING = re.compile(
    r"(?=[A-Za-z0-9+/_=-]*\d)(?=[A-Za-z0-9+/_=-]*[A-Za-z])[A-Za-z0-9+/_=-]{24,}"
)


def test_no_task_environment_value_is_or_looks_like_a_secret(deployed: Deployment) -> None:
    generated = _generated(deployed)

    for task in deployed.of_type(TASK):
        for container in deployed.containers(task):
            for item in container.get("environment", []):
                name, value = item["name"], item["value"]
                assert not SECRET_NAME.search(name), f"{task.name}: {name} must come via secrets"
                assert not CREDENTIALS_IN_URL.search(value), f"{task.name}: {name}"
                assert not any(secret in value for secret in generated), f"{task.name}: {name}"


def test_tasks_receive_secrets_by_arn_from_this_stack_s_secrets_manager(
    deployed: Deployment,
) -> None:
    secrets = {secret.state["arn"] for secret in deployed.of_type(SECRET)}

    for task in deployed.of_type(TASK):
        for container in deployed.containers(task):
            for item in container.get("secrets", []):
                assert item["valueFrom"] in secrets, f"{task.name}: {item['name']}"


def test_each_execution_role_reads_exactly_the_secrets_its_task_names(
    deployed: Deployment,
) -> None:
    for task in deployed.of_type(TASK):
        named = {
            item["valueFrom"]
            for container in deployed.containers(task)
            for item in container.get("secrets", [])
        }
        role = deployed.by_arn(task.inputs["executionRoleArn"])
        (policy,) = [p for p in deployed.of_type(ROLE_POLICY) if p.inputs["role"] == role.id]

        readable = _readable_secrets(json.loads(policy.inputs["policy"]))

        assert readable == named, task.name


def test_processes_with_a_database_get_a_url_and_others_none(deployed: Deployment) -> None:
    # Given the secrets each task receives, by variable name
    names = {
        task.name: {item["name"] for c in deployed.containers(task) for item in c["secrets"]}
        for task in deployed.of_type(TASK)
    }

    # Then the gateway (no database, no broker) gets only the JWT secret, Kong only its
    # DECK_* values, and the relays no JWT secret
    assert names["gateway-api"] == {"ORDERFLOW_JWT_SECRET"}
    assert names["kong"] == {
        "DECK_ORDERFLOW_JWT_SECRET",
        "DECK_ORDERFLOW_JWT_PUBLIC_KEY",
        "DECK_ORDERFLOW_JWT_RS256_UNUSED_SECRET",
    }
    assert names["orders-relay"] == {"ORDERS_DATABASE_URL", "INVOICES_DATABASE_URL", "BROKER_URL"}
    assert names["migrate"] == {"ORDERS_DATABASE_URL", "INVOICES_DATABASE_URL"}


def test_generated_values_appear_only_as_secret_inputs(deployed: Deployment) -> None:
    generated = _generated(deployed)

    for resource in deployed.resources:
        for text in _plain_strings(resource.inputs):
            assert not any(value in text for value in generated), resource.name
    for name, output in deployed.outputs.items():
        assert not any(value in str(output) for value in generated), name


def test_database_urls_are_built_from_the_generated_passwords(deployed: Deployment) -> None:
    versions = _secret_strings(deployed)

    for database in deployed.of_type(DATABASE):
        service = database.inputs["dbName"]
        wrapped = versions[f"secret-{service}-database-url"]
        assert wrapped[SECRET_SIG]
        url = urlsplit(wrapped["value"])

        assert url.scheme == "postgresql"
        assert url.username == database.inputs["username"] == service
        assert url.password == generated_value(f"{service}-db-password", 48)
        assert url.password == database.inputs["password"]["value"]
        assert url.hostname == database.state["address"]
        assert url.path == f"/{service}"
        assert url.query == "sslmode=require"


def test_the_broker_url_is_amqps_with_the_generated_broker_password(deployed: Deployment) -> None:
    versions = _secret_strings(deployed)
    broker = deployed.one(BROKER)
    (user,) = broker.inputs["users"]["value"]

    url = urlsplit(versions["secret-broker-url"]["value"])

    assert broker.inputs["users"][SECRET_SIG]
    assert url.scheme == "amqps"
    assert url.port == 5671
    assert (url.username, url.password) == (user["username"], user["password"])
    assert url.password == generated_value("broker-password", 32)


def test_no_stack_file_holds_a_secret() -> None:
    for stack in STACKS:
        text = (INFRA / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
        assert "secure:" not in text, f"Pulumi.{stack}.yaml holds an encrypted secret"
        assert "BEGIN" not in text, f"Pulumi.{stack}.yaml holds a PEM block"
        for key, value in _leaves(stack_file(stack)["config"]):
            assert not SECRET_NAME.search(key), f"Pulumi.{stack}.yaml: {key}"
            assert not CREDENTIALS_IN_URL.search(value), f"Pulumi.{stack}.yaml: {key}"
            assert not RANDOM_LOOKING.search(value), f"Pulumi.{stack}.yaml: {key}"


def _secret_strings(deployed: Deployment) -> dict[str, Any]:
    """Each secret version's (wrapped) value, by the id of its secret."""
    return {
        v.inputs["secretId"]: v.inputs["secretString"] for v in deployed.of_type(SECRET_VERSION)
    }


def _generated(deployed: Deployment) -> set[str]:
    return {
        generated_value(password.name, int(password.inputs["length"]))
        for password in deployed.of_type(PASSWORD)
    }


def _readable_secrets(policy: dict[str, Any]) -> set[str]:
    readable: set[str] = set()
    for statement in policy["Statement"]:
        actions = statement["Action"]
        if "secretsmanager:GetSecretValue" in ([actions] if isinstance(actions, str) else actions):
            resources = statement["Resource"]
            readable |= set([resources] if isinstance(resources, str) else resources)
    return readable


def _plain_strings(value: Any) -> Iterator[str]:
    """Every string in ``value`` outside Pulumi's secret wrappers."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return
        for item in value.values():
            yield from _plain_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _plain_strings(item)
    elif isinstance(value, str):
        yield value


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, str(value)
