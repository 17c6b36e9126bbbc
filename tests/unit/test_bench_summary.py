"""The benchmark's summary (medians, ratios, targets) and how it names processes."""

from __future__ import annotations

from tests.bench import summary
from tests.bench.procs import label_of


def a_run(system: str, sustained: float, p99: float | None = None, cpu: float = 1.0) -> dict:
    run = {
        "system": system,
        "sustained": {
            "sustained_confirmed_per_s": sustained,
            "end_to_end_confirmed_per_s": sustained * 1.2,
            "http": {"accept_rate_per_s": sustained * 2, "latency_ms": {"p50": 1, "p99": 2}},
            "accept_to_confirmed_ms": {"p50": 3},
            "backlog_at_load_end": 10,
            "cpu_ms_per_order": {"worker": cpu, "bench-client": 5.0, "rest of host": 7.0},
        },
        "latency": {},
        "peak_memory_mib": {"worker": 50.0},
    }
    if p99 is not None:
        run["latency"]["80%"] = {"offered_per_s": 1, "accept_to_confirmed_ms": {"p99": p99}}
    return run


def test_figures_are_medians_over_runs_and_ratios_compare_the_medians() -> None:
    # Given three runs of each system, one of them an outlier
    runs = [a_run("orderflow", v, cpu=2.0) for v in (100, 110, 500)]
    runs += [a_run("naive", v) for v in (200, 220, 10)]

    # When they are summarised
    result = summary.summarize(runs)

    # Then the outliers do not move the medians, and the ratio is of the medians
    assert result["medians"]["orderflow"]["sustained_confirmed_per_s"] == 110
    assert result["medians"]["naive"]["sustained_confirmed_per_s"] == 200
    assert result["ratios"]["sustained_confirmed_per_s"] == 0.55
    # the load generator and other programs are not the system's CPU
    assert result["medians"]["orderflow"]["cpu_ms_per_order_system"] == 2.0
    assert result["ratios"]["cpu_ms_per_order_system"] == 2.0


def test_targets_say_which_hold_and_which_were_missed() -> None:
    runs = [a_run("orderflow", 150, p99=120.0), a_run("naive", 100)]
    runs.append({**a_run("standalone", 150), "latency": {}})
    checks = {check["target"]: check["holds"] for check in summary.summarize(runs)["targets"]}
    assert checks["sustained orders/s, orderflow / naive"] is True  # 1.5 >= 1.0
    assert checks["  ... aim"] is True  # 1.5 >= 1.5
    assert checks["accept->confirmed p99 ms at 80 %"] is True  # 120 <= 250
    assert checks["standalone orders/s end to end"] is False  # 180 < 200


def test_the_table_has_a_column_per_system_and_the_verdicts() -> None:
    runs = [a_run("orderflow", 100, p99=300.0), a_run("naive", 200)]
    report = {
        "started_at": "now",
        "command": "nox -s bench",
        "machine": {"cpu_count": 2, "platform": "p", "python": "3.11", "servers": {}},
        "summary": summary.summarize(runs),
    }
    table = summary.format_table(report)
    assert "orderflow" in table and "naive" in table
    assert "MISSED" in table  # 0.5x and p99 300 ms


def test_the_table_shows_each_run_with_the_machine_probe_taken_before_it() -> None:
    # Given a fast and a slow run of orderflow and one of naive, each with its probe
    runs = [
        {**a_run("orderflow", 400, cpu=4.0), "run": "orderflow-r1", "probe_ms": 50.0},
        {**a_run("naive", 300), "run": "naive-r1", "probe_ms": 52.0},
        {**a_run("orderflow", 200, cpu=8.0), "run": "orderflow-r2", "probe_ms": 96.0},
    ]
    report = {
        "started_at": "now",
        "command": "nox -s bench",
        "machine": {"cpu_count": 2, "platform": "p", "python": "3.11", "servers": {}},
        "runs": runs,
        "summary": summary.summarize(runs),
    }

    # When the table is printed
    table = summary.format_table(report)

    # Then the probe's medians are a row, and every run has a line in the order it ran
    assert summary.summarize(runs)["medians"]["orderflow"]["probe_ms"] == 73.0
    assert "machine probe ms before the run" in table
    lines = table.splitlines()
    at = lines.index("per run: sustained / end to end confirmed per s, CPU ms per order, probe ms")
    assert [line.split()[0] for line in lines[at + 1 : at + 4]] == [
        "orderflow-r1",
        "naive-r1",
        "orderflow-r2",
    ]
    assert lines[at + 3].endswith("200 / 240.0, 8.0 ms, probe 96.0 ms")


def test_processes_are_named_by_the_part_they_run() -> None:
    python = ["python", "-m"]
    assert label_of([*python, "ops.cli", "serve", "orders"]) == "orders-api"
    assert label_of([*python, "ops.cli", "relay", "invoices"]) == "invoices-relay"
    assert label_of([*python, "dramatiq", "ops.worker:orders", "--queues"]) == "orders-worker"
    assert label_of([*python, "tests.bench.naive", "serve", "--port"]) == "naive-api"
    assert label_of([*python, "dramatiq", "tests.bench.naive.actors"]) == "naive-worker"
    assert label_of([*python, "ops.cli", "standalone"]) == "standalone"
    assert label_of([*python, "ops.cli", "up"]) == "supervisor"
