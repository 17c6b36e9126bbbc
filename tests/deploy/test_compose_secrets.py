"""No secret in ops/compose.yaml: every one is a required ``${NAME:?...}`` reference, filled
in from ``.env`` (never committed, never in the image); .env.example lists every
variable the file references, with values the services and Kong accept."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from .interpolation import references
from .stack import ROOT, environment

SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|PRIVATE|CREDENTIAL|API_KEY", re.I)
REQUIRED = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}")


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string value of a parsed file, with where it is (what Compose interpolates:
    values, not keys or comments)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{path}/{index}")
    elif isinstance(node, str):
        yield path, node


def test_every_secret_looking_variable_is_a_required_reference(
    raw_compose: dict[str, Any],
) -> None:
    literal = [
        f"{name}: {key}"
        for name, service in raw_compose["services"].items()
        for key, value in environment(service).items()
        if SECRET_NAME.search(key) and not REQUIRED.fullmatch(value)
    ]
    assert not literal, f"secrets must be ${{NAME:?why}} references: {literal}"


def test_every_password_in_a_url_is_a_required_reference(raw_compose: dict[str, Any]) -> None:
    for where, value in strings(raw_compose):
        for url in re.findall(r"[a-z][a-z0-9+.-]*://\S+", value):
            userinfo = urlsplit(url).netloc.rpartition("@")[0]
            password = userinfo.partition(":")[2]
            assert not userinfo or REQUIRED.fullmatch(password), f"{where}: {url}"


def test_every_variable_the_file_reads_is_required(raw_compose: dict[str, Any]) -> None:
    # An optional reference to an unset variable is silently empty: a password-less
    # database, a Grafana admin without a password.
    optional = [
        match.group(0)
        for _, value in strings(raw_compose)
        for match in references(value)
        if match.group("op") != ":?"
    ]
    assert not optional, f"use ${{NAME:?why}}: {optional}"


def test_env_example_lists_every_variable_the_file_references(
    raw_compose: dict[str, Any], example_env: dict[str, str]
) -> None:
    referenced = {
        match.group("braced") or match.group("named")
        for _, value in strings(raw_compose)
        for match in references(value)
    }
    listed = {name for name in example_env if not name.startswith("COMPOSE_")}
    assert referenced - listed == set(), f"missing from .env.example: {referenced - listed}"
    assert listed - referenced == set(), f"unused in .env.example: {listed - referenced}"


def test_the_example_jwt_secret_is_long_enough_and_the_rs256_key_is_a_public_key(
    example_env: dict[str, str],
) -> None:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    # Given the values a user copies: ops.settings refuses a secret under 32 bytes, and
    # Kong refuses the whole file if the RS256 credential's key is no public key
    assert len(example_env["ORDERFLOW_JWT_SECRET"].encode()) >= 32
    key = load_pem_public_key(example_env["DECK_ORDERFLOW_JWT_PUBLIC_KEY"].encode())
    assert isinstance(key, RSAPublicKey)


def test_the_env_file_is_ignored_by_git_and_kept_out_of_the_image() -> None:
    gitignore = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    dockerignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert ".env" in gitignore
    assert ".env" in dockerignore
