"""The benchmark's summary: medians over rounds, ratios orderflow / naive, targets, table."""

from __future__ import annotations

import statistics
from typing import Any

from tests.bench import batches

# Parts that are not the system under test: the load generator and other programs.
NOT_THE_SYSTEM = ("bench-client", "rest of host")
TARGET_RATIO = 1.0
AIM_RATIO = 1.5
TARGET_P99_MS = 250.0
TARGET_STANDALONE = 200.0


def _median(values: list[Any]) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 2) if present else None


def _get(run: dict[str, Any], *path: str) -> Any:
    value: Any = run
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


FIGURES: dict[str, tuple[str, ...]] = {
    "sustained_confirmed_per_s": ("sustained", "sustained_confirmed_per_s"),
    "end_to_end_confirmed_per_s": ("sustained", "end_to_end_confirmed_per_s"),
    "backlog_at_load_end": ("sustained", "backlog_at_load_end"),
    "http_accept_per_s": ("sustained", "http", "accept_rate_per_s"),
    "http_p50_ms": ("sustained", "http", "latency_ms", "p50"),
    "http_p99_ms": ("sustained", "http", "latency_ms", "p99"),
    "burst_accept_to_confirmed_p50_ms": ("sustained", "accept_to_confirmed_ms", "p50"),
}
LATENCY: dict[str, tuple[str, ...]] = {
    "offered_per_s": ("offered_per_s",),
    "accept_to_confirmed_p50_ms": ("accept_to_confirmed_ms", "p50"),
    "accept_to_confirmed_p95_ms": ("accept_to_confirmed_ms", "p95"),
    "accept_to_confirmed_p99_ms": ("accept_to_confirmed_ms", "p99"),
    "http_p99_ms": ("http", "latency_ms", "p99"),
    "late_starts": ("late_starts",),
}


def _system_cpu(run: dict[str, Any]) -> float:
    """CPU ms per order of the system under test in ``run``: every part but the load
    generator and other programs."""
    cpu = _get(run, "sustained", "cpu_ms_per_order") or {}
    return sum(value for part, value in cpu.items() if part not in NOT_THE_SYSTEM)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per system, ratios orderflow / naive and the targets' verdicts."""
    by_system: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_system.setdefault(run["system"], []).append(run)
    medians: dict[str, Any] = {}
    for name, group in by_system.items():
        figures: dict[str, Any] = {"runs": len(group)}
        for key, path in FIGURES.items():
            figures[key] = _median([_get(run, *path) for run in group])
        for fraction in sorted({f for run in group for f in run.get("latency", {})}):
            figures[f"at_{fraction}"] = {
                key: _median([_get(run, "latency", fraction, *path) for run in group])
                for key, path in LATENCY.items()
            }
        parts = sorted({p for run in group for p in run["sustained"]["cpu_ms_per_order"]})
        cpu = {
            p: _median([run["sustained"]["cpu_ms_per_order"].get(p) for run in group])
            for p in parts
        }
        figures["cpu_ms_per_order"] = cpu
        figures["probe_ms"] = _median([run.get("probe_ms") for run in group])
        figures["cpu_ms_per_order_system"] = _median([_system_cpu(run) for run in group])
        mem_parts = sorted({p for run in group for p in run.get("peak_memory_mib", {})})
        figures["peak_memory_mib"] = {
            p: _median([run.get("peak_memory_mib", {}).get(p) for run in group]) for p in mem_parts
        }
        if (batch_sizes := batches.medians(group)) is not None:
            figures["batch_sizes"] = batch_sizes
        medians[name] = figures
    return {"medians": medians, "ratios": _ratios(medians), "targets": _targets(medians)}


def _ratios(medians: dict[str, Any]) -> dict[str, float | None]:
    ours, naive = medians.get("orderflow"), medians.get("naive")
    if not ours or not naive:
        return {}
    ratios: dict[str, float | None] = {}
    for key in ("sustained_confirmed_per_s", "end_to_end_confirmed_per_s", "http_accept_per_s"):
        a, b = ours.get(key), naive.get(key)
        ratios[key] = round(a / b, 2) if a and b else None
    a, b = ours.get("cpu_ms_per_order_system"), naive.get("cpu_ms_per_order_system")
    ratios["cpu_ms_per_order_system"] = round(a / b, 2) if a and b else None
    return ratios


def _targets(medians: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []
    ratios = _ratios(medians)
    ratio = ratios.get("sustained_confirmed_per_s")
    if ratio is not None:
        checks.append(_check("sustained orders/s, orderflow / naive", ratio, ">=", TARGET_RATIO))
        checks.append(_check("  ... aim", ratio, ">=", AIM_RATIO))
    p99 = ((medians.get("orderflow") or {}).get("at_80%") or {}).get("accept_to_confirmed_p99_ms")
    if p99 is not None:
        checks.append(_check("accept->confirmed p99 ms at 80 %", p99, "<=", TARGET_P99_MS))
    standalone = (medians.get("standalone") or {}).get("end_to_end_confirmed_per_s")
    if standalone is not None:
        checks.append(_check("standalone orders/s end to end", standalone, ">=", TARGET_STANDALONE))
    return checks


def _check(name: str, value: float, relation: str, bound: float) -> dict[str, Any]:
    holds = value >= bound if relation == ">=" else value <= bound
    return {"target": name, "value": value, "bound": f"{relation} {bound:g}", "holds": holds}


def history_line(history: int) -> str:
    """What the databases held before each run (``--history``)."""
    if not history:
        return "history: none (every run starts on empty databases)"
    return (
        f"history: {history:,} settled orders with their invoices preloaded before each "
        "orderflow and naive run (standalone: none)"
    )


def run_lines(runs: list[dict[str, Any]]) -> list[str]:
    """One line per run, in the order they ran: its throughput, CPU per order and the
    machine probe taken before it, so that a slow spell of the machine shows as such."""
    lines = ["", "per run: sustained / end to end confirmed per s, CPU ms per order, probe ms"]
    for run in runs:
        lines.append(
            f"  {run.get('run', run['system']):<16}"
            f" {_get(run, 'sustained', 'sustained_confirmed_per_s')}"
            f" / {_get(run, 'sustained', 'end_to_end_confirmed_per_s')},"
            f" {round(_system_cpu(run), 2)} ms, probe {run.get('probe_ms', '-')} ms"
        )
    return lines


def format_table(report: dict[str, Any]) -> str:
    """The summary as a readable table: one column per system, medians over rounds."""
    medians = report["summary"]["medians"]
    names = [name for name in ("orderflow", "naive", "standalone") if name in medians]
    machine = report["machine"]
    lines = [
        f"== orderflow bench {report['started_at']}  ({report['command']})",
        f"machine: {machine['cpu_count']} CPUs, {machine['platform']}, Python {machine['python']}; "
        f"PostgreSQL {machine['servers'].get('postgresql')}, "
        f"RabbitMQ {machine['servers'].get('rabbitmq')}",
        "medians over " + ", ".join(f"{n} {medians[n]['runs']} runs" for n in names),
        history_line(report.get("parameters", {}).get("history", 0)),
        "",
        f"{'figure':<42}" + "".join(f"{n:>14}" for n in names),
    ]

    def row(label: str, values: list[Any]) -> None:
        shown = [
            "-" if v is None else f"{v:g}" if isinstance(v, float | int) else str(v) for v in values
        ]
        lines.append(f"{label:<42}" + "".join(f"{v:>14}" for v in shown))

    for key in FIGURES:
        row(key.replace("_", " "), [medians[n].get(key) for n in names])
    fractions = sorted({k for n in names for k in medians[n] if k.startswith("at_")})
    for fraction in fractions:
        for key in LATENCY:
            row(
                f"{fraction[3:]}: {key.replace('_', ' ')}",
                [(medians[n].get(fraction) or {}).get(key) for n in names],
            )
    row(
        "CPU ms per order (system, all parts)",
        [medians[n]["cpu_ms_per_order_system"] for n in names],
    )
    parts = sorted({p for n in names for p in medians[n]["cpu_ms_per_order"]})
    for part in parts:
        row(f"  CPU ms/order {part}", [medians[n]["cpu_ms_per_order"].get(part) for n in names])
    mem = sorted({p for n in names for p in medians[n]["peak_memory_mib"]})
    for part in mem:
        row(f"  peak MiB {part}", [medians[n]["peak_memory_mib"].get(part) for n in names])
    row(
        "machine probe ms before the run (lower: faster)",
        [medians[n].get("probe_ms") for n in names],
    )
    if "orderflow" in medians:
        lines += batches.table_lines(medians["orderflow"].get("batch_sizes"))
    lines += run_lines(report.get("runs", []))
    ratios = report["summary"]["ratios"]
    if ratios:
        lines += [
            "",
            "ratios orderflow / naive: " + ", ".join(f"{k} {v}" for k, v in ratios.items()),
        ]
    lines.append("")
    for check in report["summary"]["targets"]:
        verdict = "holds" if check["holds"] else "MISSED"
        lines.append(f"target {check['target']}: {check['value']:g} ({check['bound']}) {verdict}")
    return "\n".join(lines)
