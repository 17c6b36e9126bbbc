"""Resident memory of ``orderflow up``'s processes over time, and how much each grew.

Every process of the system's process group is read from ``/proc`` (Linux
only; nothing is found elsewhere): its part from the command line, labelled
as :mod:`tests.bench.procs` does (``orders-worker``, ``invoices-api``, ...),
and its ``VmRSS``. Processes are kept apart by pid, ``orders-worker[4711]``,
because a worker pool is several processes with one command line (Dramatiq's
parent, its worker processes and the Prometheus exporter it forks).

Growth of a process is measured after a warm-up: from its RSS in the last
sample at or before the end of the warm-up (the baseline) to the largest RSS
of any later sample, as a fraction of the baseline.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.bench import procs

WORKER_SUFFIX = "-worker"


def vm_rss_kib(status: str) -> int | None:
    """``VmRSS`` in KiB from the text of ``/proc/<pid>/status`` (None for a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def group_rss(group: int) -> dict[str, int]:
    """``{"label[pid]": RSS in KiB}`` of every live process in the process group ``group``."""
    found = {}
    for pid, label in procs.processes(group).items():
        try:
            rss = vm_rss_kib(Path(f"/proc/{pid}/status").read_text())
        except OSError:
            continue  # exited meanwhile
        if rss is not None:
            found[f"{label}[{pid}]"] = rss
    return found


@dataclass(frozen=True)
class Snapshot:
    """The RSS of every process at one moment."""

    at: float  # seconds from the sampler's start when this sample was due
    taken: float  # seconds from the sampler's start when it was taken
    rss_kib: dict[str, int]


def due_times(interval: float, warmup: float) -> Iterator[float]:
    """When samples are due, without end: every ``interval`` seconds from 0, plus the
    end of the warm-up, so the baseline is taken exactly then."""
    previous = None
    for step in itertools.count():
        at = step * interval
        if previous is not None and previous < warmup < at:
            yield warmup
        yield at
        previous = at


class Sampler(threading.Thread):
    """Takes a :class:`Snapshot` at each due time (seconds from :meth:`start`) until
    stopped, and a last one on stop."""

    def __init__(
        self,
        read: Callable[[], dict[str, int]],
        due: Iterable[float],
        report: Callable[[Snapshot], None] = lambda snapshot: None,
    ) -> None:
        super().__init__(name="soak-memory-sampler", daemon=True)
        self._read, self._due, self._report = read, due, report
        self._stop_requested = threading.Event()
        self.started_at = time.monotonic()
        self.snapshots: list[Snapshot] = []

    def start(self) -> None:
        """Start sampling; due times count from now."""
        self.started_at = time.monotonic()
        super().start()

    def run(self) -> None:
        for at in self._due:
            if self._stop_requested.wait(max(0.0, self.started_at + at - time.monotonic())):
                break
            self._take(at)
        self._stop_requested.wait()  # a finite schedule may end before the stop
        self._take(time.monotonic() - self.started_at)

    def stop(self) -> list[Snapshot]:
        """Take the last snapshot, end the thread and return every snapshot."""
        self._stop_requested.set()
        self.join()
        return self.snapshots

    def _take(self, at: float) -> None:
        snapshot = Snapshot(at, time.monotonic() - self.started_at, self._read())
        self.snapshots.append(snapshot)
        self._report(snapshot)


@dataclass(frozen=True)
class Growth:
    """How one process's RSS moved after the warm-up."""

    baseline_kib: int  # at the end of the warm-up (or when first seen, if later)
    max_after_kib: int | None  # the largest after the warm-up; None if never seen after
    last_kib: int  # in the last sample that saw the process
    growth: float | None  # (max_after - baseline) / baseline
    note: str  # "" or why the figure needs care: started late, gone early


def growth(snapshots: list[Snapshot], warmup: float) -> dict[str, Growth]:
    """The growth of every process seen in ``snapshots`` (ordered by time)."""
    if not snapshots:
        return {}
    last_at = snapshots[-1].at
    results = {}
    for name in sorted({name for snapshot in snapshots for name in snapshot.rss_kib}):
        seen = [(s.at, s.rss_kib[name]) for s in snapshots if name in s.rss_kib]
        before = [rss for at, rss in seen if at <= warmup]
        after = [rss for at, rss in seen if at > warmup]
        notes = []
        if not before:
            notes.append("started after the warm-up")
        if seen[-1][0] < last_at:
            notes.append("gone before the end")
        baseline = before[-1] if before else seen[0][1]
        peak = max(after) if after else None
        change = None if peak is None or baseline <= 0 else (peak - baseline) / baseline
        results[name] = Growth(baseline, peak, seen[-1][1], change, ", ".join(notes))
    return results


def worker_verdict(growths: dict[str, Growth], max_growth: float) -> list[str]:
    """Why the worker processes fail the soak; empty when every one passes.

    A worker fails when it grew more than ``max_growth`` after the warm-up, and
    also when it started after the warm-up or was gone before the end (a
    restart hides growth), or was never sampled after the warm-up.
    """
    workers = {name: g for name, g in growths.items() if is_worker(name)}
    if not workers:
        return ["no worker process was found"]
    reasons = []
    for name, result in workers.items():
        if result.note:
            reasons.append(f"{name} {result.note}")
        elif result.growth is None:
            reasons.append(f"{name} was not sampled after the warm-up")
        elif result.growth > max_growth:
            reasons.append(f"{name} grew {result.growth:.1%} (more than {max_growth:.1%})")
    return reasons


def is_worker(name: str) -> bool:
    """True for a Dramatiq worker pool's process, ``orders-worker[4711]``."""
    return name.partition("[")[0].endswith(WORKER_SUFFIX)
