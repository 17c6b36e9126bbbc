"""Fixtures: ops/compose.yaml as written, and as Compose sees it with .env.example filled
in (or left as it is)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from ops.settings import PLACEHOLDER

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
def filled_env(example_env: dict[str, str]) -> dict[str, str]:
    """.env as a user makes it from .env.example: every change-me value replaced."""
    return {
        name: secrets.token_hex(32) if value.lower().startswith(PLACEHOLDER) else value
        for name, value in example_env.items()
    }


@pytest.fixture(scope="session")
def compose(raw_compose: dict[str, Any], filled_env: dict[str, str]) -> dict[str, Any]:
    """ops/compose.yaml interpolated with a filled-in .env, as ``--env-file .env``."""
    return interpolate_tree(raw_compose, filled_env)


@pytest.fixture(scope="session")
def unfilled_compose(raw_compose: dict[str, Any], example_env: dict[str, str]) -> dict[str, Any]:
    """ops/compose.yaml interpolated with .env.example as it is (placeholders left in)."""
    return interpolate_tree(raw_compose, example_env)
