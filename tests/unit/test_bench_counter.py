"""The counter benchmark's pgbench scripts (tests/bench/counter.py)."""

from __future__ import annotations

import pytest

from tests.bench.counter import VARIANTS, _script


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_each_variant_locks_its_counter_row_until_the_commit(name: str) -> None:
    lines = _script(name).splitlines()
    # Given the transaction
    assert lines[0] == "BEGIN;" and lines[-1] == "COMMIT;"
    # Then the counter row is taken first, the shared one or the client's own
    update = lines[1]
    assert update.startswith("UPDATE counters")
    assert ("'shared'" in update) == name.startswith("shared")
    assert (":client_id" in update) == name.startswith("per-series")
    # And only the notify variants notify, before the commit
    assert any(line.startswith("NOTIFY") for line in lines) == name.endswith("+notify")


def test_numbers_of_different_series_never_collide_with_the_shared_ones() -> None:
    assert "-(:n * 1000 + :client_id + 1)" in _script("per-series")
    assert "VALUES (:n," in _script("shared")
