"""F1-F9: faults injected into the distributed system under load, then the audit.

The integration tier runs the short version of every scenario; ``nox -s chaos``
runs the full one (``CHAOS_SCALE=full``) and writes the table to ``results/``.
Scenarios run one at a time: F3 and F4 restart the shared RabbitMQ and PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.faults import BY_CODE, SCENARIOS
from tests.chaos.harness import SCALES, Outcome, keep_table, run_scenario, table

SCALE = SCALES[os.environ.get("CHAOS_SCALE", "short")]
ONLY = os.environ.get("CHAOS_ONLY", "")  # e.g. "F1,F5": run these scenarios alone
OUTCOMES: list[Outcome] = []


def chosen(codes: list[str]) -> list[str]:
    wanted = {code.strip() for code in ONLY.split(",") if code.strip()}
    return [code for code in codes if not wanted or code in wanted]


@pytest.fixture(scope="module", autouse=True)
def chaos_table() -> Iterator[None]:
    """After the scenarios: print the table and keep it (and the details) under results/."""
    yield
    keep_table("chaos", SCALE, OUTCOMES, table)


SAFE = chosen([s.code for s in SCENARIOS if not s.expect_failures])
BROKEN = chosen([s.code for s in SCENARIOS if s.expect_failures])


@pytest.mark.parametrize("code", SAFE)
def test_after_the_fault_nothing_is_lost_and_nothing_is_done_twice(
    code: str, servers: str, tmp_path: Path
) -> None:
    outcome = run_scenario(BY_CODE[code], SCALE, tmp_path, servers)
    OUTCOMES.append(outcome)
    assert outcome.accepted > 0
    assert outcome.drained, "the system did not drain"
    assert outcome.audit_failed == []
    assert outcome.harness_problems == []


@pytest.mark.parametrize("code", BROKEN)
def test_a_configuration_broken_on_purpose_makes_the_audit_fail(
    code: str, servers: str, tmp_path: Path
) -> None:
    outcome = run_scenario(BY_CODE[code], SCALE, tmp_path, servers)
    OUTCOMES.append(outcome)
    assert set(outcome.expected_failures) <= set(outcome.audit_failed), outcome.audit_failed
