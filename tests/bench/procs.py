"""CPU time per part of the system, from ``/proc`` (Linux only; empty elsewhere).

Every process of ``orderflow up``'s process group is labelled by its command
line (``orders-api``, ``invoices-worker``, ...). PostgreSQL and RabbitMQ run
outside the group, so they are summed by process name over the whole host:
anything else using those servers at the same time is counted too.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

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
    for index, word in enumerate(words):
        if word.startswith("ops.worker:"):
            return f"{word.split(':', 1)[1]}-worker"
        if word in ("serve", "relay") and index + 1 < len(words):
            return f"{words[index + 1]}-{'api' if word == 'serve' else 'relay'}"
    return "supervisor" if "up" in words else "other"


def cpu_seconds(group: int) -> dict[str, float]:
    """User plus system CPU seconds so far, summed per part of the system."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    totals: Counter[str] = Counter()
    try:
        pids = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        used = (int(fields[11]) + int(fields[12])) / ticks
        if pid == str(os.getpid()):
            label: str | None = "bench-client"
        else:
            label = SERVERS.get(name) or _label(pid, int(fields[2]), group)
        if label is not None:
            totals[label] += used
    return dict(totals)


def cpu_delta(before: dict[str, float], after: dict[str, float], seconds: float) -> dict:
    """CPU seconds per part between two snapshots, and the cores that represents."""
    delta = {label: after.get(label, 0.0) - before.get(label, 0.0) for label in after}
    ordered = sorted(delta.items(), key=lambda item: -item[1])
    return {
        label: {"cpu_s": round(used, 2), "cores": round(used / seconds, 2) if seconds else None}
        for label, used in ordered
    }
