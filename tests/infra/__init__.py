"""The Pulumi program (ops/infra) run against Pulumi's mocks, for the dev and prod stacks.

No cloud, CLI or credentials: ``pulumi.runtime.set_mocks`` stands in for the engine,
records every resource's type, name and inputs, and the tests read that record.

They need the pulumi packages of ``ops/infra/requirements.txt``, which only ``nox -s
infra`` installs: elsewhere (``nox -s tests``) each module skips, saying why. With
``ORDERFLOW_INFRA_TESTS=required`` (the ``infra`` session sets it) a missing package
is an error instead, so that session cannot pass by skipping.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

REQUIRED = "ORDERFLOW_INFRA_TESTS"


def import_pulumi() -> ModuleType:
    """``pulumi``; skips the calling module when it is not installed, unless required."""
    if os.environ.get(REQUIRED) == "required":
        return importlib.import_module("pulumi")  # an ImportError fails collection
    return pytest.importorskip(
        "pulumi", reason="pulumi is not installed: `nox -s infra` runs these tests"
    )
