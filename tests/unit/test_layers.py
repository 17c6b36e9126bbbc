"""The import-linter layers contract names every part of the house."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def layers() -> list[set[str]]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["importlinter:contract:layers"]["layers"].strip().splitlines()
    return [{name.strip() for name in line.replace("|", ":").split(":")} for line in lines]


def test_every_module_of_ops_but_the_kernel_and_infra_is_in_the_wiring_layer() -> None:
    # Given every importable module and package directly under ops
    ops = ROOT / "ops"
    parts = {path.stem for path in ops.glob("*.py") if path.stem != "__init__"}
    parts |= {path.parent.name for path in ops.glob("*/__init__.py")}
    # Then the top layer lists each of them but the kernel and the Pulumi program
    assert layers()[0] == {f"ops.{part}" for part in parts - {"shared", "infra"}}


def test_every_kind_of_the_kernel_is_a_layer_of_its_own() -> None:
    kinds = {path.parent.name for path in (ROOT / "ops" / "shared").glob("*/__init__.py")}
    assert [{f"ops.shared.{kind}"} for kind in ("web", "persistence", "telemetry", "values")] == [
        layer for layer in layers() if any(name.startswith("ops.shared") for name in layer)
    ]
    assert kinds == {"web", "persistence", "telemetry", "values"}
    assert not [p.name for p in (ROOT / "ops" / "shared").glob("*.py") if p.name != "__init__.py"]


def test_the_layers_below_web_never_load_falcon() -> None:
    # Given a fresh interpreter that imports every kernel module below the web layer
    below = [
        f"ops.shared.{path.parent.name}.{path.stem}"
        for kind in ("persistence", "telemetry", "values")
        for path in (ROOT / "ops" / "shared" / kind).glob("*.py")
        if path.stem != "__init__"
    ]
    code = (
        "import sys\n" + "".join(f"import {m}\n" for m in below) + "print('falcon' in sys.modules)"
    )
    # When it has imported them all
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    # Then the web framework was not among them
    assert loaded.stdout.strip() == "False"
