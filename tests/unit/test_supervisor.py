"""``orderflow up``'s supervision: restart pauses, failing children, and /ready."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys

import falcon.testing
import pytest

from ops import bootstrap, supervisor
from ops.settings import Settings
from ops.supervisor import Child, RestartPolicy

POLICY = RestartPolicy(first=1.0, cap=8.0, quick=10.0, failing_after=3)


def test_the_pause_doubles_after_each_quick_death_up_to_the_cap() -> None:
    assert [POLICY.pause(deaths) for deaths in range(7)] == [1, 1, 2, 4, 8, 8, 8]


def dying(code: int = 3) -> Child:
    """A child whose process exits with ``code`` as soon as it starts."""
    return Child("orders-worker", [sys.executable, "-c", f"raise SystemExit({code})"], "")


def start_and_wait(child: Child, at: float) -> None:
    supervisor._start(child, {})
    child.started_at = at
    child.process.wait(30)  # type: ignore[union-attr]


def test_a_child_that_keeps_dying_is_restarted_ever_later_and_reported_failing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    child = dying()
    start_and_wait(child, at=0.0)
    pauses, now = [], 0.0
    with caplog.at_level(logging.WARNING, logger="ops.supervisor"):
        for _ in range(4):
            # When it dies within a second of each start
            assert supervisor.supervise([child], {}, POLICY, now + 0.5)
            assert child.restart_at is not None
            pauses.append(child.restart_at - (now + 0.5))
            # Then it is not started again before its pause is over
            assert not supervisor.supervise([child], {}, POLICY, child.restart_at - 0.01)
            now = child.restart_at
            assert supervisor.supervise([child], {}, POLICY, now)
            child.started_at = now
            child.process.wait(30)  # type: ignore[union-attr]
    # Then the pauses double, and from the third quick exit on it is failing
    assert pauses == [1.0, 2.0, 4.0, 8.0]
    assert child.restarts == 4 and child.last_exit == 3
    assert child.failing(POLICY)
    messages = [record.getMessage() for record in caplog.records]
    assert "orders-worker exited with status 3 after 0.5s; restart 1 in 1s" in messages
    assert any("failing (3 quick exits in a row)" in message for message in messages)


def test_a_child_that_lived_is_restarted_after_the_first_pause_and_not_failing() -> None:
    child = dying()
    child.quick_deaths = 5  # it had been failing
    start_and_wait(child, at=100.0)
    supervisor.supervise([child], {}, POLICY, 100.0 + POLICY.quick + 1)
    assert child.restart_at == pytest.approx(100.0 + POLICY.quick + 1 + POLICY.first)
    assert not child.failing(POLICY)


def test_ready_names_the_part_of_its_service_that_keeps_dying(
    settings: Settings, databases: dict, tmp_path
) -> None:
    # Given a running supervisor (this process) that reports orders-worker failing
    worker, relay = dying(), Child("orders-relay", [], "")
    worker.quick_deaths, worker.last_exit = 4, 3
    status = tmp_path / supervisor.STATUS_FILE
    supervisor.write_status(status, [worker, relay], POLICY)
    assert json.loads(status.read_text())["children"]["orders-worker"]["failing"] is True
    # When the orders front is asked whether it is ready
    app = bootstrap.build_app(dataclasses.replace(settings, data_dir=tmp_path), "orders")
    result = falcon.testing.TestClient(app).simulate_get("/ready")
    # Then it is not, and says which part and why
    assert result.status_code == 503
    assert result.json["checks"]["parts"] == (
        "unavailable: orders-worker keeps exiting (4 quick exits in a row, last status 3)"
    )
    # And once the supervisor is gone (its file removed), the front is ready again
    status.unlink()
    assert falcon.testing.TestClient(app).simulate_get("/ready").status_code == 200


def test_the_bench_counts_each_restart_line_of_the_supervisor(tmp_path) -> None:
    from tests.bench.system import log_summary

    log = tmp_path / "system.log"
    log.write_text(
        "2026-12-07 WARNING supervisor ops.supervisor: orders-worker exited with status 3 "
        "after 0.5s; restart 1 in 1s\n"
        "2026-12-07 ERROR supervisor ops.supervisor: orders-worker exited with status 3 "
        "after 0.4s: failing (3 quick exits in a row); restart 3 in 4s\n"
        "2026-12-07 INFO orders-api: listening\n",
        encoding="utf-8",
    )
    assert log_summary(log)["restarts"] == 2


def test_a_failing_child_that_now_keeps_running_is_no_longer_failing() -> None:
    # Given a child reported failing, restarted, and running
    child = Child("orders-relay", [sys.executable, "-c", "import time; time.sleep(30)"], "")
    child.quick_deaths = 4
    supervisor._start(child, {})
    try:
        child.started_at = 0.0
        assert child.failing(POLICY)
        # When it is still running a moment later, it is still failing
        assert not supervisor.supervise([child], {}, POLICY, POLICY.quick - 1)
        assert child.failing(POLICY)
        # Then once it has run for `quick` seconds, it is not
        assert supervisor.supervise([child], {}, POLICY, POLICY.quick)
        assert not child.failing(POLICY)
    finally:
        child.process.kill()  # type: ignore[union-attr]
        child.process.wait()  # type: ignore[union-attr]
