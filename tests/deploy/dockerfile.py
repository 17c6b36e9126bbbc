"""Reading a Dockerfile and a .dockerignore the way Docker does, enough for the tests."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Instruction:
    """One instruction, continuation lines joined, in build stage ``stage`` (0 = first)."""

    keyword: str
    arguments: str
    stage: int

    def exec_form(self) -> list[str]:
        """The JSON (exec) form's list; fails the test for the shell form."""
        value = json.loads(self.arguments)
        assert isinstance(value, list), f"{self.keyword} is not in exec form: {self.arguments}"
        return value

    def words(self) -> list[str]:
        """The arguments split as a shell would (flags such as --from= included)."""
        return shlex.split(self.arguments)


def parse(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile (comments and blank lines dropped, even inside a
    continued instruction, as Docker does)."""
    found: list[Instruction] = []
    stage, pending = -1, ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += " " + stripped
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        found.append(Instruction(keyword.upper(), " ".join(arguments.split()), stage))
    return found


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    """The instructions of the last stage: what the image is made of."""
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def _pattern(pattern: str) -> re.Pattern[str]:
    regex = ""
    for token in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
        regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
            token, re.escape(token)
        )
    return re.compile(regex)


def ignored(path: str, patterns: list[str]) -> bool:
    """True when .dockerignore ``patterns`` keep ``path`` (relative to the context) out
    of the build context: the last matching pattern wins, ``!`` re-includes, and a
    pattern matching a directory excludes everything under it."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for raw in patterns:
        negate = raw.startswith("!")
        regex = _pattern(raw.removeprefix("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            result = not negate
    return result


def dockerignore_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore (comments and blank lines dropped)."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
