"""Pulumi's entry point: read the stack's configuration, build, export the outputs."""

import sys
from pathlib import Path

# Pulumi runs this file with ops/infra/ on sys.path; the program imports itself and
# ops.settings as packages of the repository, so the repository root goes first.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pulumi

from ops.infra.config import from_pulumi
from ops.infra.stack import build

for name, value in build(from_pulumi(pulumi.Config(), pulumi.get_stack())).items():
    pulumi.export(name, value)
