"""Batch sizes: how many events each call of a batch actor handled, from the system log.

A batch actor logs one line per call containing ``<actor> batch_size=<n>``
(``issue_invoices batch_size=12``). A run's figures give, per actor, the
number of calls, the events they carried and the p50/p95 of the sizes
(nearest rank, as :func:`tests.bench.measure.percentile`), over the whole run
and over the sustained phase alone (the log's bytes written while it ran). A
log without such lines (actors that take one event a call) gives no actors.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.bench.measure import percentile

BATCH_LINE = re.compile(r"(\w+) batch_size=(\d+)")
SCOPES = ("run", "sustained")


def sizes_by_actor(lines: Iterable[str]) -> dict[str, list[int]]:
    """The batch sizes each actor logged, in the order of the lines."""
    sizes: dict[str, list[int]] = {}
    for line in lines:
        for actor, size in BATCH_LINE.findall(line):
            sizes.setdefault(actor, []).append(int(size))
    return sizes


def figures(sizes: dict[str, list[int]]) -> dict[str, dict[str, int]]:
    """Per actor: batches, events in them, and p50/p95 of the batch size."""
    return {
        actor: {
            "batches": len(values),
            "events": sum(values),
            "p50": int(percentile(values, 50)),
            "p95": int(percentile(values, 95)),
        }
        for actor, values in sorted(sizes.items())
        if values
    }


def read(path: Path, start: int = 0, end: int | None = None) -> dict[str, dict[str, int]]:
    """The figures of the bytes ``start`` to ``end`` (the end of the file) of the log ``path``."""
    with path.open("rb") as log:
        log.seek(start)
        data = log.read() if end is None else log.read(max(0, end - start))
    return figures(sizes_by_actor(data.decode("utf-8", "replace").splitlines()))


def run_figures(path: Path, sustained: tuple[int, int]) -> dict[str, Any]:
    """A run's batch figures: the whole log, and the byte range of the sustained phase."""
    return {"run": read(path), "sustained": read(path, *sustained)}


def medians(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Per scope and actor, the median of each figure over the runs that have batch
    figures; None when no run has any."""
    present = [run["batch_sizes"] for run in runs if "batch_sizes" in run]
    if not present:
        return None
    return {
        scope: _scope_medians([figures.get(scope, {}) for figures in present]) for scope in SCOPES
    }


def _scope_medians(runs: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, float]]:
    """Per actor, the median of each figure over the runs in which the actor logged."""
    actors = sorted({actor for figures in runs for actor in figures})
    return {
        actor: {
            key: statistics.median(figures[actor][key] for figures in runs if actor in figures)
            for key in ("batches", "events", "p50", "p95")
        }
        for actor in actors
    }


def table_lines(medians_of: dict[str, Any] | None, label_width: int = 42) -> list[str]:
    """The summary lines: ``batch sizes <actor> p50/p95 | 12 / 30 (batches 400)`` per actor,
    the sustained phase's figures after; one ``none`` line when no actor logged a batch."""
    if medians_of is None:
        return []
    run, sustained = medians_of.get("run", {}), medians_of.get("sustained", {})
    if not run:
        return [f"{'batch sizes':<{label_width}}| none"]
    lines = []
    for actor, whole in run.items():
        text = f"{_shown(whole)}; sustained phase {_shown(sustained.get(actor))}"
        lines.append(f"{f'batch sizes {actor} p50/p95':<{label_width}}| {text}")
    return lines


def _shown(figures: dict[str, float] | None) -> str:
    if not figures:
        return "none"
    return f"{figures['p50']:g} / {figures['p95']:g} (batches {figures['batches']:g})"
