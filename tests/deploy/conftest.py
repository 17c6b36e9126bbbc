"""Fixtures: ops/compose.yaml as written and as Compose sees it with .env.example."""

from __future__ import annotations

from typing import Any

import pytest

from .interpolation import interpolate_tree, read_env_file
from .stack import ENV_EXAMPLE, load_compose


@pytest.fixture(scope="session")
def raw_compose() -> dict[str, Any]:
    """ops/compose.yaml parsed, its ``${...}`` references left as written."""
    return load_compose()


@pytest.fixture(scope="session")
def example_env() -> dict[str, str]:
    """The variables .env.example sets, as Compose reads them."""
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="session")
def compose(raw_compose: dict[str, Any], example_env: dict[str, str]) -> dict[str, Any]:
    """ops/compose.yaml interpolated with .env.example, as ``--env-file .env.example``."""
    return interpolate_tree(raw_compose, example_env)
