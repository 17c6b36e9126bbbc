"""The soak's pure parts: labels, RSS parsing, sampling schedule, growth and the verdict."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import pytest

from ops.settings import Settings
from tests.bench import memory, soak
from tests.bench.client import LoadResult, Sample
from tests.bench.memory import Growth, Snapshot
from tests.bench.procs import label_of
from tests.bench.soak_report import http_figures, memory_rows

SETTLED = {"accepted": 10, "drained": True, "still_pending": 0}


def _snapshots(*rows: tuple[float, dict[str, int]]) -> list[Snapshot]:
    return [Snapshot(at, at, rss) for at, rss in rows]


@pytest.mark.parametrize(
    ("argv", "label"),
    [
        (["python", "-m", "dramatiq", "ops.worker:orders", "--queues", "orders"], "orders-worker"),
        (["python", "-m", "ops.cli", "serve", "invoices"], "invoices-api"),
        (["python", "-m", "ops.cli", "relay", "orders"], "orders-relay"),
        (["python", "-m", "ops.cli", "up"], "supervisor"),
        (["python", "-c", "from multiprocessing.spawn import spawn_main"], "other"),
    ],
)
def test_processes_are_labelled_by_their_command_line(argv: list[str], label: str) -> None:
    assert label_of(argv) == label


def test_vm_rss_is_read_in_kib_and_a_zombie_has_none() -> None:
    assert memory.vm_rss_kib("Name:\tpython\nVmHWM:\t 9000 kB\nVmRSS:\t   51234 kB\n") == 51234
    assert memory.vm_rss_kib("Name:\tpython\nState:\tZ (zombie)\n") is None


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_the_process_group_of_this_test_is_found_with_its_rss() -> None:
    found = memory.group_rss(os.getpgrp())
    assert found[f"other[{os.getpid()}]"] > 1000


def test_samples_are_due_every_interval_and_at_the_end_of_the_warm_up() -> None:
    assert list(itertools.islice(memory.due_times(10, 25), 6)) == [0, 10, 20, 25, 30, 40]
    assert list(itertools.islice(memory.due_times(10, 20), 4)) == [0, 10, 20, 30]
    assert list(itertools.islice(memory.due_times(10, 0), 3)) == [0, 10, 20]


def test_the_sampler_takes_a_last_snapshot_when_stopped() -> None:
    # Given a sampler reading a fake process table every 10 ms
    reads = itertools.count()
    sampler = memory.Sampler(lambda: {"orders-worker[1]": next(reads)}, memory.due_times(0.01, 0))
    sampler.start()
    deadline = time.monotonic() + 5
    while len(sampler.snapshots) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)  # a poll with a deadline
    # When it is stopped
    snapshots = sampler.stop()
    # Then it took the due samples in order and one more on stop
    assert not sampler.is_alive()
    assert len(snapshots) >= 4
    assert [s.rss_kib["orders-worker[1]"] for s in snapshots] == list(range(len(snapshots)))
    assert snapshots[-1].at >= snapshots[-2].at


def test_growth_runs_from_the_end_of_the_warm_up_to_the_largest_later_rss() -> None:
    # Given a worker at 100 MiB when the warm-up ends, 105 at most after it
    snapshots = _snapshots(
        (0, {"w[1]": 60_000}),
        (30, {"w[1]": 100_000}),
        (40, {"w[1]": 105_000}),
        (50, {"w[1]": 103_000}),
    )
    # When its growth is computed with a 30 s warm-up
    result = memory.growth(snapshots, warmup=30)["w[1]"]
    # Then the warm-up's own growth does not count
    assert result == Growth(100_000, 105_000, 103_000, pytest.approx(0.05), "")


def test_processes_that_came_or_went_during_the_soak_are_noted() -> None:
    snapshots = _snapshots(
        (0, {"w[1]": 100, "w[2]": 100}),
        (10, {"w[1]": 100, "w[2]": 100}),
        (20, {"w[1]": 100, "w[3]": 100}),
        (30, {"w[1]": 100, "w[3]": 120}),
    )
    growths = memory.growth(snapshots, warmup=10)
    assert growths["w[2]"].note == "gone before the end"
    assert growths["w[2]"].max_after_kib is None
    assert growths["w[3]"].note == "started after the warm-up"
    assert growths["w[3]"].growth == pytest.approx(0.2)
    assert growths["w[1]"].note == ""


def _growth(change: float | None, note: str = "") -> Growth:
    return Growth(100, None if change is None else int(100 * (1 + change)), 100, change, note)


def test_workers_within_the_limit_pass_whatever_other_processes_do() -> None:
    growths = {
        "orders-worker[1]": _growth(0.10),
        "invoices-worker[2]": _growth(0.02),
        "orders-api[3]": _growth(0.80),
    }
    assert memory.worker_verdict(growths, max_growth=0.10) == []


def test_a_worker_above_the_limit_fails_the_soak() -> None:
    growths = {"orders-worker[1]": _growth(0.15), "invoices-worker[2]": _growth(0.01)}
    assert memory.worker_verdict(growths, max_growth=0.10) == [
        "orders-worker[1] grew 15.0% (more than 10.0%)"
    ]


def test_a_restarted_or_missing_worker_fails_the_soak() -> None:
    restarted = {"orders-worker[9]": _growth(0.0, "started after the warm-up")}
    assert memory.worker_verdict(restarted, 0.10) == ["orders-worker[9] started after the warm-up"]
    assert memory.worker_verdict({"orders-api[1]": _growth(0.0)}, 0.10) == [
        "no worker process was found"
    ]
    assert memory.worker_verdict({"orders-worker[1]": _growth(None)}, 0.10) == [
        "orders-worker[1] was not sampled after the warm-up"
    ]


def test_the_soak_fails_when_orders_did_not_settle_or_none_was_accepted() -> None:
    growths = {"orders-worker[1]": _growth(0.0)}
    assert soak.verdict(growths, 0.10, SETTLED) == []
    stuck = {**SETTLED, "drained": False, "still_pending": 3}
    assert soak.verdict(growths, 0.10, stuck) == ["3 accepted orders never settled"]
    none = {"accepted": 0, "drained": True, "still_pending": 0}
    assert soak.verdict(growths, 0.10, none) == ["no order was accepted"]


def test_the_memory_table_marks_the_workers_named_in_the_failures() -> None:
    growths = {
        "orders-worker[1]": vars(_growth(0.15)),
        "orders-worker[2]": vars(_growth(0.01)),
        "orders-api[3]": vars(_growth(0.5)),
    }
    lines = memory_rows(growths, ["orders-worker[1] grew 15.0% (more than 10.0%)"])
    assert lines[1].split()[-1] == "FAIL"
    assert lines[2].split()[-1] == "ok"
    assert lines[3].split()[-1] == "+50.0%"


def test_http_figures_say_whether_the_offered_rate_was_achieved() -> None:
    # Given 100 orders scheduled at 50/s, sent on time, the last one refused
    samples = [Sample(i, 201, None, 0.01, f"id{i}", False, i / 50, 0.001, 0.009) for i in range(99)]
    samples.append(Sample(99, None, "ConnectionResetError", 0.02, None, False, 99 / 50, 0.0, 0.02))
    load = LoadResult(samples, 2.0, 0.0, 0.0, 2.0, 50.0, 0, 0.001, 3, 0.05)
    # When the figures are computed per second
    figures = http_figures(load, window=1.0)
    # Then they show the achieved arrival rate, the error and both windows
    assert figures["achieved_arrival_rate_per_s"] == pytest.approx(50, rel=0.01)
    assert figures["accepted_201"] == 99
    assert figures["errors"] == {"exception:ConnectionResetError": 1}
    assert [(w["requests"], w["errors"]) for w in figures["per_window"]] == [(50, 0), (50, 1)]
    assert figures["client_cpu_ms_per_request"] == 0.5


def test_the_soak_keeps_apart_from_the_benchmark() -> None:
    # Given the default command line
    parser = soak._parser()
    args = parser.parse_args([])
    # When the system's environment is built
    env = soak.build_env(args, "s" * 64)
    # Then it has its own vhost, databases, data directory and ports
    assert env["BROKER_URL"].endswith("/orderflow-soak")
    assert env["ORDERS_DATABASE_URL"].endswith("/orderflow_soak_orders")
    assert env["INVOICES_DATABASE_URL"].endswith("/orderflow_soak_invoices")
    assert (env["ORDERS_PORT"], env["INVOICES_PORT"]) == ("4343", "4344")
    assert Path(env["ORDERFLOW_DATA_DIR"]).name == "soak"
    defaults = Settings()
    assert int(env["ORDERS_WORKER_METRICS_PORT"]) != defaults.orders_worker_metrics_port
    assert int(env["INVOICES_RELAY_METRICS_PORT"]) != defaults.invoices_relay_metrics_port
    assert Settings.from_env(env).distributed


def test_a_warm_up_as_long_as_the_soak_is_refused() -> None:
    parser = soak._parser()
    args = parser.parse_args(["--minutes", "2", "--warmup-minutes", "2"])
    with pytest.raises(SystemExit):
        soak._check_args(parser, args)
