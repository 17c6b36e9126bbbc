"""One run of the program per stack file, shared by every test that asks for it.

Nothing here imports pulumi: without it, the test modules skip before any fixture runs.
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_aws warns, when imported, about deprecated classes this program does not use.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws")


@pytest.fixture(scope="session", params=["dev", "prod"])
def deployed(request: pytest.FixtureRequest) -> Any:
    """The resources and outputs of ``Pulumi.dev.yaml`` and ``Pulumi.prod.yaml``, in turn."""
    from tests.infra.harness import deploy

    return deploy(request.param)
