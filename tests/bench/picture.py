"""The benchmark's picture: throughput per system beside accept -> confirmed latency.

    python -m tests.bench.picture results/bench-<UTC>.json [-o out.png]

:mod:`tests.bench.run` draws it beside its JSON report. It is drawn from the report's
``runs`` alone, so any saved report can be drawn again. Left: per system, a bar at the
median over the rounds of the sustained and of the end-to-end confirmed orders/s, a dot
per round (the spread). Right: accept -> confirmed p50, p95 and p99 against the offered
rate of each open-loop phase, a line through the medians per percentile and system and a
faint dot per round; standalone runs have no open-loop phase. What a report lacks (a
system, a phase, the percentiles of a phase that confirmed nothing) is left out.
matplotlib's object API on its Agg canvas: no display, no pyplot state.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

SYSTEMS = ("orderflow", "naive", "standalone")
COLOURS = {"orderflow": "tab:blue", "naive": "tab:orange", "standalone": "tab:green"}
THROUGHPUT = {  # bar: where a run keeps its figure
    "sustained": ("sustained", "sustained_confirmed_per_s"),
    "end to end": ("sustained", "end_to_end_confirmed_per_s"),
}
HATCHES = {"sustained": "", "end to end": "//"}
PERCENTILES = {"p50": "-", "p95": "--", "p99": ":"}  # line style of each
SIZE_INCHES, DPI = (14.0, 5.2), 100  # 1400 x 520 pixels

Phases = dict[str, list[tuple[float, dict[str, float]]]]


def _get(value: Any, *path: str) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, int | float) else None


def _by_system(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The report's runs per system: orderflow, naive, standalone, then any other."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for run in report.get("runs") or []:
        runs.setdefault(str(run.get("system", "?")), []).append(run)
    known = [name for name in SYSTEMS if name in runs]
    return {name: runs[name] for name in known + sorted(set(runs) - set(known))}


def throughput(report: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Per system and bar, each round's confirmed orders/s, in the order they ran."""
    return {
        name: {
            bar: values
            for bar, path in THROUGHPUT.items()
            if (values := [v for run in runs if (v := _get(run, *path)) is not None])
        }
        for name, runs in _by_system(report).items()
    }


def latency(report: dict[str, Any]) -> dict[str, Phases]:
    """Per system and open-loop phase (``"80%"``), each round's offered orders/s and
    accept -> confirmed percentiles in ms; systems without any phase are left out."""
    figures: dict[str, Phases] = {}
    for name, runs in _by_system(report).items():
        for run in runs:
            for phase, measured in (run.get("latency") or {}).items():
                offered = _get(measured, "offered_per_s")
                if offered is None:
                    continue
                ms = {
                    p: v
                    for p in PERCENTILES
                    if (v := _get(measured, "accept_to_confirmed_ms", p)) is not None
                }
                figures.setdefault(name, {}).setdefault(phase, []).append((offered, ms))
    return figures


def figure(report: dict[str, Any]) -> Figure:
    """The two panels of ``report``, titled with its start and, if it has one, its commit."""
    fig = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1, 1.25))
    _throughput_panel(left, throughput(report))
    _latency_panel(right, latency(report))
    title = f"orderflow bench {report.get('started_at', '(no start time)')}"
    if report.get("commit"):
        title += f", commit {str(report['commit'])[:12]}"
    machine = report.get("machine") or {}
    details = [
        f"{machine['cpu_count']} CPUs" if machine.get("cpu_count") else "",
        f"Python {machine['python']}" if machine.get("python") else "",
        str(report.get("command") or ""),
    ]
    fig.suptitle("\n".join([title, "; ".join(d for d in details if d)]), fontsize=10)
    return fig


def draw(report: dict[str, Any], path: Path) -> Path:
    """Write the picture of ``report`` to ``path`` (PNG); returns ``path``."""
    figure(report).savefig(path, dpi=DPI, format="png")
    return path


def _throughput_panel(ax: Axes, figures: dict[str, dict[str, list[float]]]) -> None:
    width = 0.8 / len(THROUGHPUT)
    for slot, name in enumerate(figures):
        for offset, (bar, values) in enumerate(figures[name].items()):
            x = slot + (offset - (len(THROUGHPUT) - 1) / 2) * width
            bars = ax.bar(
                [x],
                [statistics.median(values)],
                width * 0.9,
                color=COLOURS.get(name, "tab:gray"),
                alpha=0.85 if bar == "sustained" else 0.45,
                hatch=HATCHES[bar],
                edgecolor="black",
                linewidth=0.5,
                label=f"{name} {bar}",
            )
            ax.bar_label(bars, fmt="%.0f", label_type="center", fontsize=9)
            spread = [
                x + width * 0.3 * (i / max(1, len(values) - 1) - 0.5) for i in range(len(values))
            ]
            ax.scatter(
                spread if len(values) > 1 else [x],
                values,
                s=12,
                c="black",
                zorder=3,
                gid=f"{name} {bar} rounds",
            )
    ax.set_xticks(range(len(figures)), [_tick(name, figures[name]) for name in figures])
    ax.set_ylabel("confirmed orders / s")
    ax.set_title("Throughput: bar = median of the rounds, dot = one round", fontsize=10)
    if not figures:
        _nothing(ax, "no run in this report")
        return
    ax.set_xlim(-0.6, len(figures) - 0.4)
    ax.margins(y=0.12)
    handles: list[Artist] = [
        Patch(facecolor="white", edgecolor="black", hatch=HATCHES[bar], label=bar)
        for bar in THROUGHPUT
    ]
    handles.append(
        Line2D([], [], color="black", marker="o", linestyle="", markersize=4, label="one round")
    )
    ax.legend(handles=handles, fontsize=8, loc="upper right")


def _tick(name: str, bars: dict[str, list[float]]) -> str:
    rounds = max((len(values) for values in bars.values()), default=0)
    return f"{name}\n{rounds} round{'s' if rounds != 1 else ''}"


def _latency_panel(ax: Axes, figures: dict[str, Phases]) -> None:
    ax.set_title(
        "Accept → confirmed, open loop: median of the rounds, faint dot = one round", fontsize=10
    )
    ax.set_xlabel("offered orders / s (a fraction of each system's sustained rate)")
    ax.set_ylabel("accept → confirmed, ms")
    drawn: list[float] = []
    for name, phases in figures.items():
        colour = COLOURS.get(name, "tab:gray")
        ordered = sorted(phases.items(), key=lambda item: statistics.median(o for o, _ in item[1]))
        tops: dict[str, tuple[float, float]] = {}
        for p, style in PERCENTILES.items():
            xs, ys = [], []
            for phase, rounds in ordered:
                measured = [(offered, ms[p]) for offered, ms in rounds if p in ms]
                if not measured:
                    continue
                xs.append(statistics.median(offered for offered, _ in measured))
                ys.append(statistics.median(value for _, value in measured))
                tops[phase] = max(tops.get(phase, (0.0, 0.0)), (ys[-1], xs[-1]))
                ax.scatter(
                    [offered for offered, _ in measured],
                    [value for _, value in measured],
                    s=8,
                    color=colour,
                    alpha=0.3,
                    gid=f"{name} {p} rounds",
                )
            if xs:
                ax.plot(xs, ys, style, marker="o", markersize=4, color=colour, label=f"{name} {p}")
                drawn += ys
        for phase, (y, x) in tops.items():
            ax.annotate(
                phase, (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8
            )
    if not drawn:
        _nothing(ax, "no open-loop phase in this report")
        return
    if min(drawn) > 0 and max(drawn) / min(drawn) >= 10:
        ax.set_yscale("log")
        ax.set_ylabel("accept → confirmed, ms (log scale)")
    ax.margins(x=0.08, y=0.12)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="best")


def _nothing(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def main(argv: list[str] | None = None) -> int:
    """Draw a saved report's picture; 0 when written."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench.picture", description=__doc__)
    parser.add_argument("report", type=Path, help="a results/bench-<UTC>.json")
    parser.add_argument("-o", "--output", type=Path, help="the PNG (default: beside the report)")
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text())
    print(draw(report, args.output or args.report.with_suffix(".png")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
