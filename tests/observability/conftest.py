"""Fixtures: the unit tier's stub system and the integration tier's servers and clusters."""

from __future__ import annotations

from tests.integration.conftest import (  # noqa: F401 - fixtures and the report hook
    make_cluster,
    pytest_runtest_makereport,
    servers,
)
from tests.unit.conftest import databases, settings, stub_system, token  # noqa: F401
