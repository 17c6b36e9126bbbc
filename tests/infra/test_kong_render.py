"""Kong's render container, run here exactly as its task definition says: it fills
ops/kong/kong.yaml's decK templates from the DECK_* values ECS injects, and stops,
naming the variable, when one is missing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra import import_pulumi

import_pulumi()

from ops.infra.kong import DECK_VARIABLES  # noqa: E402
from tests.infra.harness import KONG_YAML, Deployment  # noqa: E402
from tests.infra.mocks import TASK  # noqa: E402

TEMPLATE = re.compile(r'\$\{\{ env "(DECK_[A-Z0-9_]+)" \}\}')
VALUES = {
    "DECK_ORDERFLOW_JWT_SECRET": 'hs256 "secret" with quotes: and a colon ' + "x" * 16,
    "DECK_ORDERFLOW_JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
    "DECK_ORDERFLOW_JWT_RS256_UNUSED_SECRET": "unused-" + "y" * 32,
}


def _render_container(deployed: Deployment) -> dict[str, Any]:
    (kong,) = [task for task in deployed.of_type(TASK) if task.name == "kong"]
    render, _ = deployed.containers(kong)
    return render


def _run(container: dict[str, Any], directory: Path, values: dict[str, str]) -> Any:
    """The container's entry point and command, with its environment plus ``values`` (what
    ECS injects), writing into ``directory`` instead of the task volume."""
    if shutil.which("sh") is None or shutil.which("python3") is None:
        pytest.skip("the render container's command needs sh and python3")
    env = {item["name"]: item["value"] for item in container["environment"]}
    env["KONG_CONFIG_DIRECTORY"] = str(directory)
    env["PATH"] = os.environ.get("PATH", os.defpath)
    return subprocess.run(
        container["entryPoint"] + container["command"],
        env={**env, **values},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_render_container_fills_every_template_with_its_value(
    deployed: Deployment, tmp_path: Path
) -> None:
    # When the render container's command runs with every DECK_* value set
    result = _run(_render_container(deployed), tmp_path, VALUES)

    # Then Kong's file parses and each jwt credential holds the value, byte for byte
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "kong.yaml").read_text(encoding="utf-8")
    assert not TEMPLATE.search(text)
    credentials = {
        consumer["username"]: consumer["jwt_secrets"][0]
        for consumer in yaml.safe_load(text)["consumers"]
        if consumer.get("jwt_secrets")  # the console's anonymous consumer has none
    }
    assert credentials["orderflow"]["secret"] == VALUES["DECK_ORDERFLOW_JWT_SECRET"]
    rs256 = credentials["orderflow-rs256"]
    assert rs256["rsa_public_key"] == VALUES["DECK_ORDERFLOW_JWT_PUBLIC_KEY"]
    assert rs256["secret"] == VALUES["DECK_ORDERFLOW_JWT_RS256_UNUSED_SECRET"]


def test_the_render_container_stops_naming_a_missing_variable(
    deployed: Deployment, tmp_path: Path
) -> None:
    values = {k: v for k, v in VALUES.items() if k != "DECK_ORDERFLOW_JWT_PUBLIC_KEY"}

    result = _run(_render_container(deployed), tmp_path, values)

    assert result.returncode != 0
    assert "DECK_ORDERFLOW_JWT_PUBLIC_KEY is not set" in result.stderr
    assert not (tmp_path / "kong.yaml").exists()


def test_the_render_container_gets_the_repository_file_and_every_deck_value(
    deployed: Deployment,
) -> None:
    render = _render_container(deployed)
    environment = {item["name"]: item["value"] for item in render["environment"]}

    assert environment["KONG_TEMPLATE"] == KONG_YAML.read_text(encoding="utf-8")
    assert sorted(item["name"] for item in render["secrets"]) == sorted(DECK_VARIABLES)
    assert set(DECK_VARIABLES) == set(TEMPLATE.findall(KONG_YAML.read_text(encoding="utf-8")))
    assert {m["containerPath"] for m in render["mountPoints"]} == {
        environment["KONG_CONFIG_DIRECTORY"]
    }
