"""CPU time per part of the system, from ``/proc`` (Linux only; empty elsewhere).

Every process of ``orderflow up``'s process group is labelled by its command
line (``orders-api``, ``invoices-worker``, ...). PostgreSQL and RabbitMQ run
outside the group, so they are summed by process name over the whole host:
anything else using those servers at the same time is counted too.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

HOST = "_host_busy"
SERVERS = {"postgres": "postgresql (host-wide)", "beam.smp": "rabbitmq (host-wide)"}


def _label(pid: str, pgrp: int, group: int) -> str | None:
    """The part a process belongs to, or None if it is not of interest."""
    if pgrp != group:
        return None
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    words = [word.decode(errors="replace") for word in argv if word]
    return label_of(words)


def label_of(words: list[str]) -> str:
    """The part a command line belongs to (orderflow's, the naive chain's, standalone)."""
    for index, word in enumerate(words):
        if word.startswith("ops.worker:"):
            return f"{word.split(':', 1)[1]}-worker"
        if word in ("serve", "relay") and index + 1 < len(words) and index > 0:
            if words[index - 1] == "tests.bench.naive":
                return "naive-api"
            return f"{words[index + 1]}-{'api' if word == 'serve' else 'relay'}"
        if word == "tests.bench.naive.actors":
            return "naive-worker"
        if word == "standalone":
            return "standalone"
    return "supervisor" if "up" in words else "other"


def _stats() -> Iterator[tuple[str, str, list[str]]]:
    """``(pid, command name, fields after the name)`` of every process in ``/proc/*/stat``."""
    try:
        pids = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue  # exited meanwhile
        yield (
            pid,
            stat[stat.index("(") + 1 : stat.rindex(")")],
            stat[stat.rindex(")") + 2 :].split(),
        )


def processes(group: int) -> dict[int, str]:
    """Every live process of the process group ``group``, labelled by part."""
    found = {}
    for pid, _, fields in _stats():
        label = _label(pid, int(fields[2]), group)
        if label is not None:
            found[int(pid)] = label
    return found


def peak_memory_mib(group: int) -> dict[str, float]:
    """Peak resident memory (VmHWM) of each part's largest process so far, in MiB."""
    peaks: dict[str, float] = {}
    for pid, label in processes(group).items():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                mib = int(line.split()[1]) / 1024
                peaks[label] = round(max(peaks.get(label, 0.0), mib), 1)
    return dict(sorted(peaks.items()))


def cpu_seconds(group: int) -> dict[str, float]:
    """User plus system CPU seconds so far, summed per part of the system."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    totals: Counter[str] = Counter()
    for pid, name, fields in _stats():
        used = (int(fields[11]) + int(fields[12])) / ticks
        if pid == str(os.getpid()):
            label: str | None = "bench-client"
        else:
            label = SERVERS.get(name) or _label(pid, int(fields[2]), group)
        if label is not None:
            totals[label] += used
    busy = host_busy_seconds()
    if busy is not None:
        totals[HOST] = busy
    return dict(totals)


def host_busy_seconds() -> float | None:
    """CPU seconds the whole host spent busy (not idle or iowait) since boot, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(value) for value in fields[:8]]
    busy = sum(values) - values[3] - (values[4] if len(values) > 4 else 0)
    return busy / (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)


def host_busy_percent(seconds: float = 2.0) -> float | None:
    """How busy the host's CPUs are over the next ``seconds`` (for an idle check)."""
    before = host_busy_seconds()
    time.sleep(seconds)
    after = host_busy_seconds()
    if before is None or after is None:
        return None
    return round(100 * (after - before) / (seconds * (os.cpu_count() or 1)), 1)


def cpu_delta(before: dict[str, float], after: dict[str, float], seconds: float) -> dict:
    """CPU seconds per part between two snapshots, and the cores that represents.

    ``rest of host`` is the host's busy time not used by any labelled part:
    other programs running at the same time (or processes that exited).
    """
    delta = {label: after.get(label, 0.0) - before.get(label, 0.0) for label in after}
    host = delta.pop(HOST, None)
    if host is not None:
        delta["rest of host"] = max(0.0, host - sum(delta.values()))
    ordered = sorted(delta.items(), key=lambda item: -item[1])
    return {
        label: {"cpu_s": round(used, 2), "cores": round(used / seconds, 2) if seconds else None}
        for label, used in ordered
    }


def speed_probe(repeats: int = 5) -> float:
    """Milliseconds one core takes for a fixed piece of pure-Python work (dicts, strings,
    JSON), the median of ``repeats``: taken before each run, on an idle system, it shows
    how fast the machine was just then (a virtual machine's speed drifts), so that runs
    of different speed are not read as differences between the systems."""

    def work() -> int:
        total = 0
        for number in range(20_000):
            record = {"id": number, "name": f"order-{number}", "total": str(number * 7)}
            total += len(json.dumps(record)) + hash(record["name"]) % 7
        return total

    timings = []
    for _ in range(repeats):
        begun = time.perf_counter()
        work()
        timings.append((time.perf_counter() - begun) * 1000)
    return round(statistics.median(timings), 1)
