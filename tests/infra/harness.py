"""Runs the Pulumi program under mocks that record every resource, for one stack file.

Imported only after :func:`tests.infra.import_pulumi` found pulumi.
"""

from __future__ import annotations

import dataclasses
import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import yaml

from tests.infra.mocks import (
    ACCOUNT,
    REGION,
    Recorded,
    RecordingMocks,
)

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "ops" / "infra"
KONG_YAML = ROOT / "ops" / "kong" / "kong.yaml"
STACKS = ("dev", "prod")
IMAGE_TAG = "3f2a9c1"
CERTIFICATE = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0f1e2d3c-0000-4000-8000-000000000000"
# What a deploy passes on the command line rather than in the stack file.
DEPLOY_CONFIG = {
    "dev": {"orderflow:imageTag": IMAGE_TAG},
    "prod": {"orderflow:imageTag": IMAGE_TAG, "orderflow:certificateArn": CERTIFICATE},
}


@dataclasses.dataclass(frozen=True)
class Deployment:
    """Everything one run of the program registered, and its stack outputs."""

    stack: str
    resources: list[Recorded]
    outputs: dict[str, Any]

    def of_type(self, typ: str) -> list[Recorded]:
        return [resource for resource in self.resources if resource.type == typ]

    def one(self, typ: str) -> Recorded:
        (resource,) = self.of_type(typ)
        return resource

    def named(self, typ: str, name: str) -> Recorded:
        (resource,) = [r for r in self.of_type(typ) if r.name == name]
        return resource

    def by_arn(self, arn: str) -> Recorded:
        (resource,) = [r for r in self.resources if r.state.get("arn") == arn]
        return resource

    def by_id(self, resource_id: str) -> Recorded:
        (resource,) = [r for r in self.resources if r.id == resource_id]
        return resource

    def containers(self, task: Recorded) -> list[dict[str, Any]]:
        return json.loads(task.inputs["containerDefinitions"])

    def task_of(self, service: Recorded) -> Recorded:
        return self.by_arn(service.inputs["taskDefinition"])


def stack_file(stack: str) -> dict[str, Any]:
    """``Pulumi.<stack>.yaml`` as parsed YAML."""
    return yaml.safe_load((INFRA / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))


def stack_config(stack: str) -> dict[str, str]:
    """The stack file's configuration as the engine hands it to a program: objects and
    scalars other than strings JSON-encoded."""
    config = stack_file(stack)["config"]
    return {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()
    }


def deploy(stack: str, extra: dict[str, str] | None = None) -> Deployment:
    """Run the program for ``stack`` (plus ``extra`` configuration) under the mocks."""
    from ops.infra.config import from_pulumi
    from ops.infra.stack import build

    mocks = _mock(stack, extra)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        result = build(from_pulumi(pulumi.Config(), stack))
        return pulumi.Output.all(**result).apply(outputs.update)

    program()
    return Deployment(stack=stack, resources=mocks.resources, outputs=outputs)


def run_entry_point(stack: str) -> list[Recorded]:
    """Run ``ops/infra/__main__.py`` as Pulumi would, under the mocks; what it registered."""
    mocks = _mock(stack, None)

    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(INFRA / "__main__.py"), run_name="__main__")

    program()
    return mocks.resources


def _mock(stack: str, extra: dict[str, str] | None) -> RecordingMocks:
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="orderflow", stack=stack, preview=False)
    pulumi.runtime.set_all_config({**stack_config(stack), **DEPLOY_CONFIG[stack], **(extra or {})})
    return mocks
