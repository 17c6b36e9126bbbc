"""The benchmark's picture, drawn from reports shaped like the ones tests.bench.run writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")

import numpy as np
from matplotlib.axes import Axes
from matplotlib.container import BarContainer

from tests.bench import picture, run, summary

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SYSTEMS = ("orderflow", "naive", "standalone")
RATES = {"orderflow": (600.0, 520.0, 630.0), "naive": (410.0, 500.0, 350.0)}


def ms(p50: float | None, p95: float | None, p99: float | None) -> dict[str, Any]:
    """``accept_to_confirmed_ms`` as tests.bench.measure.summarize_ms writes it."""
    return {"count": 100, "mean": p50, "p50": p50, "p95": p95, "p99": p99, "max": p99}


def a_run(system: str, number: int, rate: float, fractions: tuple[float, ...]) -> dict[str, Any]:
    """One run as tests.bench.run.run_one records it (the parts the summary and picture read)."""
    base = 25.0 if system == "orderflow" else 3.0
    return {
        "system": system,
        "run": f"{system}-r{number}",
        "probe_ms": 55.0,
        "sustained": {
            "http": {"accept_rate_per_s": rate * 1.05, "latency_ms": {"p50": 40.0, "p99": 90.0}},
            "sustained_confirmed_per_s": rate,
            "backlog_at_load_end": 4,
            "end_to_end_confirmed_per_s": rate * 0.98,
            "accept_to_confirmed_ms": ms(base, base * 3, base * 5),
            "cpu_ms_per_order": {"worker": 1.0, "bench-client": 0.4, "rest of host": 0.1},
        },
        "latency": {
            f"{round(100 * f)}%": {
                "offered_per_s": round(rate * f, 1),
                "late_starts": 0,
                "http": {"latency_ms": {"p99": 12.0}},
                "accept_to_confirmed_ms": ms(base * f, base * f * 4, base * f * 6 + number),
            }
            for f in fractions
        },
        "peak_memory_mib": {"worker": 60.0},
    }


def bars(ax: Axes) -> dict[str, float]:
    """Each bar's label and height."""
    found = [c for c in ax.containers if isinstance(c, BarContainer)]
    return {str(c.get_label()): c.patches[0].get_height() for c in found}


def dots(ax: Axes) -> dict[str, list[float]]:
    """Each scatter's gid and the heights of its dots."""
    return {str(c.get_gid()): np.asarray(c.get_offsets())[:, 1].tolist() for c in ax.collections}


def lines(ax: Axes) -> dict[str, tuple[list[float], list[float]]]:
    """Each line's label and its points, xs and ys."""
    return {
        str(line.get_label()): (
            np.asarray(line.get_xdata()).tolist(),
            np.asarray(line.get_ydata()).tolist(),
        )
        for line in ax.get_lines()
    }


def a_report(rounds: int = 3, systems: tuple[str, ...] = SYSTEMS):
    """A report as tests.bench.run.main writes it, its summary made by tests.bench.summary."""
    runs = []
    for number in range(1, rounds + 1):
        for name in systems:
            rate = RATES.get(name, (450.0, 455.0, 440.0))[(number - 1) % 3]
            fractions = () if name == "standalone" else (0.5, 0.8)
            runs.append(a_run(name, number, rate, fractions))
    return {
        "benchmark": "orderflow vs the naive chain: POST /orders -> confirmed",
        "started_at": "2026-12-07T05:37:49+00:00",
        "command": "nox -s bench -- ",
        "machine": {"cpu_count": 2, "platform": "Linux", "python": "3.11.7", "servers": {}},
        "runs": runs,
        "summary": summary.summarize(runs),
    }


def test_the_picture_is_a_small_png_of_two_panels(tmp_path: Path) -> None:
    # Given a report of three rounds of every system
    report = a_report()

    # When its picture is drawn
    path = picture.draw(report, tmp_path / "bench.png")

    # Then it is a PNG of 1400 x 520 pixels, small enough to commit
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert (int.from_bytes(data[16:20]), int.from_bytes(data[20:24])) == (1400, 520)
    assert 20_000 < len(data) < 300_000
    fig = picture.figure(report)
    assert [ax.get_ylabel() for ax in fig.axes] == [
        "confirmed orders / s",
        "accept → confirmed, ms (log scale)",
    ]
    assert "2026-12-07T05:37:49+00:00" in fig.get_suptitle()


def test_throughput_bars_stand_at_the_summary_medians_with_a_dot_per_round() -> None:
    # Given a report of three rounds of every system
    report = a_report()
    medians = report["summary"]["medians"]

    # When its figure is made
    throughput = picture.figure(report).axes[0]

    # Then each system has a sustained and an end-to-end bar at the table's median
    heights = bars(throughput)
    assert list(heights) == [f"{n} {b}" for n in SYSTEMS for b in picture.THROUGHPUT]
    for name in SYSTEMS:
        assert heights[f"{name} sustained"] == pytest.approx(
            medians[name]["sustained_confirmed_per_s"]
        )
        assert heights[f"{name} end to end"] == pytest.approx(
            medians[name]["end_to_end_confirmed_per_s"], abs=0.01
        )
    # and every round is a dot beside its bar
    rounds = dots(throughput)
    assert rounds["orderflow sustained rounds"] == list(RATES["orderflow"])
    assert all(len(values) == 3 for values in rounds.values()) and len(rounds) == 6
    assert [t.get_text() for t in throughput.get_xticklabels()] == [
        "orderflow\n3 rounds",
        "naive\n3 rounds",
        "standalone\n3 rounds",
    ]


def test_latency_has_a_line_per_percentile_and_system_through_the_offered_rates() -> None:
    # Given a report whose orderflow and naive runs each had phases at 50 % and 80 %
    report = a_report()
    medians = report["summary"]["medians"]

    # When its figure is made
    latency = picture.figure(report).axes[1]

    # Then a line per system and percentile goes through the table's medians at each rate
    drawn = lines(latency)
    assert sorted(drawn) == sorted(f"{n} {p}" for n in RATES for p in ("p50", "p95", "p99"))
    for name in RATES:
        at = [medians[name]["at_50%"], medians[name]["at_80%"]]
        for p in ("p50", "p95", "p99"):
            xs, ys = drawn[f"{name} {p}"]
            assert xs == pytest.approx([a["offered_per_s"] for a in at])
            assert ys == pytest.approx([a[f"accept_to_confirmed_{p}_ms"] for a in at])
    # and the phases are named on the chart; standalone, which has none, has no line
    assert {t.get_text() for t in latency.texts} == {"50%", "80%"}
    assert latency.get_yscale() == "log"


def test_a_report_of_orderflow_alone_over_one_round_still_draws(tmp_path: Path) -> None:
    # Given one round of orderflow only, whose 80 % phase confirmed nothing
    report = a_report(rounds=1, systems=("orderflow",))
    report["runs"][0]["latency"]["80%"]["accept_to_confirmed_ms"] = ms(None, None, None)

    # When its picture is drawn
    path = picture.draw(report, tmp_path / "one.png")

    # Then it is a PNG with one pair of bars, one dot each, and lines through the 50 % phase
    assert path.read_bytes().startswith(PNG_MAGIC)
    throughput, latency = picture.figure(report).axes
    assert list(bars(throughput)) == ["orderflow sustained", "orderflow end to end"]
    assert [len(values) for values in dots(throughput).values()] == [1, 1]
    assert [t.get_text() for t in throughput.get_xticklabels()] == ["orderflow\n1 round"]
    assert [len(xs) for xs, _ in lines(latency).values()] == [1, 1, 1]


def test_a_report_without_runs_draws_two_empty_panels(tmp_path: Path) -> None:
    report = {"started_at": "now", "runs": []}
    assert picture.draw(report, tmp_path / "empty.png").read_bytes().startswith(PNG_MAGIC)
    texts = [t.get_text() for ax in picture.figure(report).axes for t in ax.texts]
    assert texts == ["no run in this report", "no open-loop phase in this report"]


def test_the_command_redraws_a_saved_report_beside_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a saved report
    saved = tmp_path / "bench-20261207T053749Z.json"
    saved.write_text(json.dumps({**a_report(), "commit": "3bb9d6f0123456789"}))

    # When the command draws it, then again to a chosen file
    assert picture.main([str(saved)]) == 0
    assert picture.main([str(saved), "-o", str(tmp_path / "other.png")]) == 0

    # Then the pictures are beside it and where asked, and the title names the commit
    assert saved.with_suffix(".png").read_bytes().startswith(PNG_MAGIC)
    assert (tmp_path / "other.png").read_bytes().startswith(PNG_MAGIC)
    assert capsys.readouterr().out.splitlines()[0] == str(saved.with_suffix(".png"))
    figure = picture.figure(json.loads(saved.read_text()))
    assert "commit 3bb9d6f01234" in figure.get_suptitle()


def test_the_bench_draws_the_picture_beside_its_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the report the bench just wrote
    saved = tmp_path / "bench-20261207T053749Z.json"
    saved.write_text(json.dumps(a_report()))

    # When the bench draws its picture
    run._picture(saved)

    # Then the PNG is beside it and its path is printed
    assert saved.with_suffix(".png").read_bytes().startswith(PNG_MAGIC)
    assert capsys.readouterr().out == f"picture: {saved.with_suffix('.png')}\n"


def test_the_bench_goes_on_without_matplotlib_saying_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a machine where the picture module cannot be imported
    monkeypatch.setitem(sys.modules, "tests.bench.picture", None)
    monkeypatch.delattr("tests.bench.picture", raising=False)
    saved = tmp_path / "bench-20261207T053749Z.json"
    saved.write_text(json.dumps(a_report()))

    # When the bench would draw its picture
    run._picture(saved)

    # Then there is no picture, one line says why, and nothing was raised
    assert not saved.with_suffix(".png").exists()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("bench: no picture, matplotlib is not installed")
