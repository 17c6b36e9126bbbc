"""ops/kong/render.py: fills in the decK templates of kong.yaml with values that stay one
valid YAML scalar each, and stops, naming the variable, when one is missing."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from .stack import OPS

RENDER = OPS / "kong" / "render.py"
KONG_YAML = OPS / "kong" / "kong.yaml"
PEM = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----\n"
VALUES = {
    "DECK_ORDERFLOW_JWT_SECRET": "render-tests-secret-0123456789abcdef",
    "DECK_ORDERFLOW_JWT_PUBLIC_KEY": PEM,
    "DECK_ORDERFLOW_JWT_RS256_UNUSED_SECRET": "unused-render-tests-secret-0123456789",
}


@pytest.fixture(scope="module")
def render() -> ModuleType:
    """ops/kong/render.py loaded as a module (ops/kong is no package: it is a script)."""
    spec = importlib.util.spec_from_file_location("kong_render", RENDER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The script as a command, with ``env`` as its only DECK_ variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DECK_")}
    return subprocess.run(
        [sys.executable, str(RENDER), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def credentials(text: str) -> dict[str, dict[str, str]]:
    """The jwt credentials of a rendered kong.yaml, by key."""
    config = yaml.safe_load(text)
    return {
        c["key"]: c for consumer in config["consumers"] for c in consumer.get("jwt_secrets", [])
    }


def test_the_script_renders_every_template_of_kong_yaml(render: ModuleType, tmp_path: Path) -> None:
    # When kong.yaml is rendered into a file
    output = tmp_path / "kong.yaml"
    result = run([str(KONG_YAML), "--output", str(output)], VALUES)
    # Then no template is left and the keys hold the variables' values
    assert result.returncode == 0, result.stderr
    text = output.read_text(encoding="utf-8")
    assert not render.TEMPLATE.search(text)
    rendered = credentials(text)
    assert rendered["orderflow"]["secret"] == VALUES["DECK_ORDERFLOW_JWT_SECRET"]
    assert rendered["orderflow-rs256"]["rsa_public_key"] == PEM
    # and everything else is as written
    assert yaml.safe_load(text)["services"] == yaml.safe_load(KONG_YAML.read_text())["services"]


@pytest.mark.parametrize(
    "value",
    [
        'a "quoted" value',
        "it's: # not a comment",
        "back\\slash\\n not a newline",
        "line one\nline two\n",
        "tab\tand ünïcödé and an emoji 🔑",
        "del \x7f and c1 \x85\x9f controls",
        "unicode line\u2028and paragraph\u2029separators",
        "{not: a mapping} [nor, a list] *nor &an anchor",
        " leading and trailing spaces ",
    ],
)
def test_a_value_loads_back_unchanged_whatever_it_holds(render: ModuleType, value: str) -> None:
    text = render.render('secret: ${{ env "DECK_X" }}\n', {"DECK_X": value})
    assert yaml.safe_load(text) == {"secret": value}


def test_the_script_stops_naming_the_variable_that_is_not_set(tmp_path: Path) -> None:
    # Given one variable missing
    output = tmp_path / "kong.yaml"
    env = {k: v for k, v in VALUES.items() if k != "DECK_ORDERFLOW_JWT_PUBLIC_KEY"}
    # When rendering, Then it fails, names the variable, and writes nothing
    result = run([str(KONG_YAML), "--output", str(output)], env)
    assert result.returncode == 1
    assert "DECK_ORDERFLOW_JWT_PUBLIC_KEY is not set" in result.stderr
    assert not output.exists()


def test_an_empty_variable_counts_as_not_set(render: ModuleType) -> None:
    with pytest.raises(render.MissingVariable) as error:
        render.render('secret: ${{ env "DECK_EMPTY" }}', {"DECK_EMPTY": ""})
    assert error.value.name == "DECK_EMPTY"


def test_without_output_the_render_goes_to_standard_output() -> None:
    result = run([str(KONG_YAML)], VALUES)
    assert result.returncode == 0, result.stderr
    assert credentials(result.stdout)["orderflow"]["secret"] == VALUES["DECK_ORDERFLOW_JWT_SECRET"]


def test_text_without_templates_is_left_alone(render: ModuleType) -> None:
    text = 'url: http://orders:3333\nliteral: ${NOT_A_DECK_TEMPLATE} {{ env "X" }}\n'
    assert render.render(text, {}) == text
