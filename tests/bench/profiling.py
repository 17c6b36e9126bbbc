"""A py-spy profile of every process of the system under test, saved with each run.

``py-spy record --gil --nonblocking`` samples each Python process from the
outside (no code change, no pause of the process) and keeps only the threads
that hold the GIL: the Python CPU time, which is what an optimisation of our
code can change. Time spent waiting for PostgreSQL or RabbitMQ, with the GIL
released, does not show here; the report's CPU split by process shows it.

The raw output is one line per distinct stack (``frame;frame;... count``), the
"collapsed" format flame graph tools and speedscope read. :func:`top_frames`
summarises it: the share of samples in which each function of our packages was
on the stack (inclusive) and the hottest leaf frames of all code.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

from tests.bench import procs

OUR_CODE = ("orders/", "invoices/", "actors/", "ops/", "tests/bench/naive/")
RATE = 50  # samples per second and process: enough for a profile, cheap for the machine


def available() -> bool:
    """True when the ``py-spy`` command is installed."""
    return shutil.which("py-spy") is not None


def start(group: int, directory: Path, prefix: str) -> list[tuple[str, Path, subprocess.Popen]]:
    """Start one ``py-spy record`` per Python process of ``group``; returns them."""
    directory.mkdir(parents=True, exist_ok=True)
    started = []
    for pid, label in procs.processes(group).items():
        if label in ("supervisor", "other"):
            continue
        path = directory / f"{prefix}-{label}-{pid}.txt"
        command = [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(RATE),
            "--gil",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(path),
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        started.append((label, path, process))
    return started


def stop(recorders: list[tuple[str, Path, subprocess.Popen]]) -> dict[str, dict]:
    """Stop the recorders (they write their file on SIGINT); returns each part's summary."""
    for _, _, process in recorders:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
    summaries: dict[str, dict] = {}
    for label, path, process in recorders:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if path.exists():
            summary = top_frames(path)
            if summary["samples"] > summaries.get(label, {}).get("samples", -1):
                summaries[label] = summary  # of several processes of a part, the busiest
    return summaries


def top_frames(path: Path, count: int = 12) -> dict:
    """Samples, and the hottest functions of our code (inclusive) and of all code (leaf)."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        samples = int(number)
        total += samples
        frames = stack.split(";")
        leaf[_short(frames[-1])] += samples
        for frame in {_short(frame) for frame in frames if any(p in frame for p in OUR_CODE)}:
            inclusive[frame] += samples

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(count)]

    return {
        "file": path.name,
        "samples": total,
        "ours_inclusive_percent": shares(inclusive) if total else [],
        "leaf_percent": shares(leaf) if total else [],
    }


def _short(frame: str) -> str:
    """``function (path/file.py:line)`` -> ``function (file.py)``."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rsplit("/", 2)
    return f"{name} ({'/'.join(file[-2:])})" if where else name
