"""Figures and the printed table of a soak (:mod:`tests.bench.soak`).

HTTP latency here is open-loop latency: from each order's scheduled send to
the end of its answer (see :mod:`tests.bench.openloop`); ``service_time`` is
from the actual send. Percentiles are exact nearest-rank, as in the benchmark.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import psycopg2.extensions

from tests.bench import measure, memory
from tests.bench.client import LoadResult, Sample


def outcome(sample: Sample) -> str:
    """``"201"``, another status code, or ``"exception:<Class>"``."""
    return str(sample.status) if sample.status is not None else f"exception:{sample.error}"


def http_figures(load: LoadResult, window: float) -> dict[str, Any]:
    """What the load did: offered and achieved rates, latency, errors, and per ``window``."""
    samples = load.samples
    outcomes = Counter(outcome(sample) for sample in samples)
    examples = {outcome(s): s.error or "" for s in reversed(samples) if outcome(s) != "201"}
    starts = [(s.scheduled or 0.0) + s.start_lag for s in samples if s.start_lag is not None]
    span = max(starts) - min(starts) if len(starts) > 1 else 0.0
    accepted = outcomes.get("201", 0)
    cpu = load.client_cpu_seconds or 0.0
    return {
        "requests": len(samples),
        "accepted_201": accepted,
        "offered_rate_per_s": load.offered_rate,
        "achieved_arrival_rate_per_s": round((len(starts) - 1) / span, 2) if span else None,
        "late_starts": load.late_starts,
        "max_start_lag_ms": round((load.max_start_lag or 0.0) * 1000, 1),
        "connections_opened": load.connections_opened,
        "load_window_s": round(load.seconds, 2),
        "accept_rate_per_s": round(accepted / load.seconds, 2) if load.seconds > 0 else None,
        "latency_ms": measure.summarize_ms([s.latency for s in samples if s.status is not None]),
        "service_time_ms": measure.summarize_ms(
            [s.service_time for s in samples if s.status is not None and s.service_time is not None]
        ),
        "errors": {key: count for key, count in sorted(outcomes.items()) if key != "201"},
        "error_examples": dict(sorted(examples.items())),
        "client_cpu_s": round(cpu, 2),
        "client_cpu_ms_per_request": round(1000 * cpu / len(samples), 3) if samples else None,
        "per_window": windows(samples, window),
    }


def windows(samples: list[Sample], window: float) -> list[dict[str, Any]]:
    """Requests, 201s, errors and latency of the orders scheduled in each ``window`` seconds."""
    groups: dict[int, list[Sample]] = defaultdict(list)
    for sample in samples:
        groups[int((sample.scheduled or 0.0) // window)].append(sample)
    rows = []
    for number, group in sorted(groups.items()):
        latency = measure.summarize_ms([s.latency for s in group if s.status is not None])
        rows.append(
            {
                "from_s": number * window,
                "requests": len(group),
                "accepted_201": sum(1 for s in group if s.status == 201),
                "errors": sum(1 for s in group if s.status != 201),
                "p50_ms": latency["p50"],
                "p99_ms": latency["p99"],
                "max_ms": latency["max"],
            }
        )
    return rows


def settled_by_status(connection: psycopg2.extensions.connection, ids: list[str]) -> dict:
    """How many of the orders ``ids`` are in each status."""
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, count(*) FROM orders WHERE id = ANY(%s::uuid[]) GROUP BY status",
            (ids,),
        )
        return dict(sorted((str(status), int(count)) for status, count in cursor.fetchall()))


def _mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f}"


def memory_rows(growths: dict[str, dict[str, Any]], failures: list[str]) -> list[str]:
    """One line per process: baseline, largest after the warm-up, last RSS, growth, and
    for a worker whether ``failures`` names it."""
    lines = [f"  {'process':<28} {'warm-up MiB':>11} {'max after':>10} {'last':>8} {'growth':>8}"]
    for name, g in growths.items():
        change = "-" if g["growth"] is None else f"{g['growth']:+.1%}"
        judged = ""
        if memory.is_worker(name):
            judged = "FAIL" if any(f.startswith(f"{name} ") for f in failures) else "ok"
        lines.append(
            f"  {name:<28} {_mib(g['baseline_kib']):>11} {_mib(g['max_after_kib']):>10} "
            f"{_mib(g['last_kib']):>8} {change:>8}  {judged} {g['note']}".rstrip()
        )
    return lines


def format_table(report: dict[str, Any]) -> str:
    """The soak report as a readable table."""
    p, h, s = report["parameters"], report["http"], report["saga"]
    lat, log = h["latency_ms"], report["system"]["log_summary"]
    lines = [
        f"== orderflow soak {report['started_at']}: {p['rate']:g} orders/s for "
        f"{p['minutes']:g} min, warm-up {p['warmup_minutes']:g} min, "
        f"workers {p['worker_processes']}x{p['worker_threads']}",
        f"requests / accepted 201   {h['requests']} / {h['accepted_201']}",
        f"offered / achieved rate   {h['offered_rate_per_s']} / "
        f"{h['achieved_arrival_rate_per_s']} per s (late starts {h['late_starts']}, "
        f"max start lag {h['max_start_lag_ms']} ms, {h['connections_opened']} connections)",
        f"accept rate               {h['accept_rate_per_s']} per s over {h['load_window_s']} s",
        f"latency ms (from sched.)  p50 {lat['p50']}  p99 {lat['p99']}  max {lat['max']}",
        f"errors                    {h['errors'] or 'none'}",
        f"client CPU                {h['client_cpu_s']} s, "
        f"{h['client_cpu_ms_per_request']} ms per request",
        f"settled                   {'all' if s['drained'] else 'NOT all'} of {s['accepted']} "
        f"({s['drain_wait_s']} s after the load), {s['by_status']}",
        f"system log                tracebacks {log['tracebacks']}, restarts "
        f"{log['restarts']}, warnings {log['warning']}, errors {log['error']}",
        "== per minute (by scheduled time)",
        *[
            f"  {row['from_s']:>6.0f} s  {row['requests']:>6} req  {row['accepted_201']:>6} "
            f"x 201  {row['errors']:>4} err  p50 {row['p50_ms']}  p99 {row['p99_ms']} ms"
            for row in h["per_window"]
        ],
        f"== worker RSS: max growth allowed {p['max_growth']:.0%} after the warm-up",
        *memory_rows(report["memory"]["growth"], report["failures"]),
        "== " + ("PASSED" if report["passed"] else "FAILED"),
        *[f"  {reason}" for reason in report["failures"]],
    ]
    return "\n".join(lines)
