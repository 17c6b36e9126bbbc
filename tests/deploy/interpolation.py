"""Compose's variable handling, for tests: ``.env`` files and ``${...}`` interpolation.

Only what ops/compose.yaml may use: ``$$``, ``$NAME``, ``${NAME}`` and the modifiers
``:-`` ``-`` ``:?`` ``?`` ``:+`` ``+`` (no nesting). Anything else raises, so a construct
this module does not understand fails the tests instead of passing unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
REFERENCE = re.compile(
    rf"\$(?:(?P<escaped>\$)|\{{(?P<braced>{NAME})(?:(?P<op>:?[-?+])(?P<arg>[^{{}}$]*))?\}}"
    rf"|(?P<named>{NAME})|(?P<invalid>))"
)
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class InterpolationError(ValueError):
    """A reference Compose would refuse: a required variable unset, or bad syntax."""


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines as Compose reads them: ``#`` comments, ``"..."`` with
    backslash escapes (``\\n``), ``'...'`` literal, bare values up to a `` #`` comment."""
    values = {}
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = text.strip().removeprefix("export ")
        if not line or line.startswith("#"):
            continue
        name, equals, raw = line.partition("=")
        if not equals or not re.fullmatch(NAME, name):
            raise InterpolationError(f"{path.name}:{number}: not NAME=value: {line!r}")
        values[name] = _env_value(raw, f"{path.name}:{number}")
    return values


def _env_value(raw: str, where: str) -> str:
    if raw.startswith('"'):
        match = re.fullmatch(r'"((?:[^"\\]|\\.)*)"\s*(#.*)?', raw)
        if not match:
            raise InterpolationError(f"{where}: unterminated double quotes")
        return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(0)), match.group(1))
    if raw.startswith("'"):
        match = re.fullmatch(r"'([^']*)'\s*(#.*)?", raw)
        if not match:
            raise InterpolationError(f"{where}: unterminated single quotes")
        return match.group(1)
    return re.sub(r"\s+#.*$", "", raw).strip()


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """``text`` with every reference replaced as Compose does; raises
    :class:`InterpolationError` for a required variable that is missing, or bad syntax."""
    return REFERENCE.sub(lambda match: _substitute(match, env, text), text)


def _substitute(match: re.Match[str], env: Mapping[str, str], text: str) -> str:
    if match.group("escaped"):
        return "$"
    if match.group("invalid") is not None:
        raise InterpolationError(f"unsupported or invalid reference in {text!r}")
    name = match.group("braced") or match.group("named")
    op, arg = match.group("op") or "", match.group("arg") or ""
    value = env.get(name)
    present = value is not None and (value != "" or not op.startswith(":"))
    current = value or ""
    if op.endswith("-"):
        return current if present else arg
    if op.endswith("?"):
        if not present:
            raise InterpolationError(f"{name}: {arg or 'required'}")
        return current
    if op.endswith("+"):
        return arg if present else ""
    return current


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    """A parsed Compose file with every string value interpolated (keys stay as written,
    other scalars keep their YAML type)."""
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, env) for value in node]
    return interpolate(node, env) if isinstance(node, str) else node


def references(text: str) -> list[re.Match[str]]:
    """Every variable reference in ``text`` (``$$`` escapes excluded)."""
    return [m for m in REFERENCE.finditer(text) if m.group("braced") or m.group("named")]
