"""Benchmark of orderflow in distributed mode on the local RabbitMQ and PostgreSQL.

    python -m tests.bench.run [--orders 5000] [--concurrency 32] ...   (or: nox -s bench -- ...)

Not a test: it measures, prints a table and writes ``results/bench-<UTC>.json``.

1. Prepares a clean broker and clean databases: the RabbitMQ vhost
   ``orderflow-bench`` is deleted and recreated, the PostgreSQL databases
   ``orderflow_bench_orders`` and ``orderflow_bench_invoices`` are dropped
   (WITH FORCE) and created. Refuses to start if the HTTP ports are taken.
2. Starts ``python -m ops.cli up`` (migrations, both HTTP fronts, one worker
   pool per queue, one relay per outbox) with its output in
   ``results/bench-<UTC>-system.log``, and polls ``GET /ready`` on both fronts.
3. Warm-up: ``--warmup`` orders at the same concurrency, then waits until they
   all settled, so the measured load starts with connected workers and relays
   and an empty pipeline. Warm-up orders are not counted anywhere.
4. Load: ``--orders`` orders over HTTP at a fixed concurrency with the closed-loop
   client of :mod:`tests.bench.client` (threads, one keep-alive
   ``http.client`` connection each; see there for why and what it implies).
5. Snapshot of the backlog when the load ended (pending orders first, then
   unpublished outbox rows, then queue depths via one ``rabbitmqctl`` call,
   which costs about half a CPU second), then waits up to ``--drain-timeout``
   seconds until no run order is pending (polled every 0.5 s).
6. Figures (see :mod:`tests.bench.measure`): HTTP accept rate = 201 answers /
   load window; client-side HTTP latency; errors by status; saga throughput =
   confirmed orders / (first accept .. last confirmation) and accept ->
   confirmed latency, both from ``created_at``/``settled_at`` in the orders
   database. Percentiles are exact nearest-rank, not interpolated.
7. Stops the system (SIGINT, wait, SIGKILL of its process group) in all cases.

Everything runs on one machine: the client, both servers and every orderflow
process share its CPUs, and the report says how busy they were and which
part used how much (:mod:`tests.bench.procs`).

``print`` is the output here; ruff.toml already ignores T20 for ``tests/**``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import signal
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from ops.settings import Settings, SettingsError
from tests.bench import measure, procs, system
from tests.bench.client import LoadResult, Sample, run_load

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
VHOST = "orderflow-bench"
BROKER_URL = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
ORDERS_DB = "orderflow_bench_orders"
INVOICES_DB = "orderflow_bench_invoices"
PERCENTILE_METHOD = "exact nearest-rank (smallest sample with at least p% of samples <= it)"
LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")
MILESTONE_LABELS = {
    "order_placed_marked_published": "OrderPlaced relayed*",
    "invoice_issued": "invoice issued",
    "invoice_issued_marked_published": "InvoiceIssued relayed*",
    "order_confirmed": "order confirmed",
}
NUMBERS = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d+")
TIMESTAMP = re.compile(r"^\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[,.]\d+\]?\s*")


def _parser() -> argparse.ArgumentParser:
    """The command line of the benchmark."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--orders", type=int, default=5000, help="measured orders (5000)")
    parser.add_argument("--concurrency", type=int, default=32, help="client threads (32)")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up orders, not counted (100)")
    parser.add_argument("--orders-port", type=int, default=4333, help="orders API port (4333)")
    parser.add_argument("--invoices-port", type=int, default=4334, help="invoices API port (4334)")
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=Settings.worker_processes,
        help=f"WORKER_PROCESSES (project default {Settings.worker_processes})",
    )
    parser.add_argument(
        "--worker-threads",
        type=int,
        default=Settings.worker_threads,
        help=f"WORKER_THREADS (project default {Settings.worker_threads})",
    )
    parser.add_argument(
        "--http-threads",
        type=int,
        default=Settings.http_threads,
        help=f"HTTP_THREADS (project default {Settings.http_threads})",
    )
    parser.add_argument(
        "--credit-limit",
        default="1000000000.00",
        help="INVOICES_DEFAULT_CREDIT_LIMIT, generous so no order is rejected (1000000000.00)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for every order to settle after the load (300)",
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=120.0, help="seconds to wait for /ready (120)"
    )
    parser.add_argument(
        "--request-timeout", type=float, default=60.0, help="client socket timeout (60)"
    )
    parser.add_argument(
        "--results-dir", type=Path, default=ROOT / "results", help="where reports go (results/)"
    )
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse values that cannot make a meaningful run."""
    positive = ("orders", "concurrency", "worker_processes", "worker_threads", "http_threads")
    for name in positive:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if args.drain_timeout <= 0 or args.ready_timeout <= 0 or args.request_timeout <= 0:
        parser.error("timeouts must be positive")
    if args.orders_port == args.invoices_port:
        parser.error("--orders-port and --invoices-port must differ")


def build_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment of ``orderflow up``: ours plus the benchmark's settings."""
    return {
        **os.environ,
        "BROKER_URL": BROKER_URL,
        "ORDERS_DATABASE_URL": system.pg_url(ORDERS_DB),
        "INVOICES_DATABASE_URL": system.pg_url(INVOICES_DB),
        "ORDERFLOW_HOST": HOST,
        "ORDERS_PORT": str(args.orders_port),
        "INVOICES_PORT": str(args.invoices_port),
        "WORKER_PROCESSES": str(args.worker_processes),
        "WORKER_THREADS": str(args.worker_threads),
        "HTTP_THREADS": str(args.http_threads),
        "INVOICES_DEFAULT_CREDIT_LIMIT": args.credit_limit,
    }


def machine_info() -> dict[str, Any]:
    """The machine the benchmark ran on."""
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU time of the whole machine from /proc/stat, or None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(value) for value in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


def _client_cpu_seconds() -> float:
    """User plus system CPU seconds used by this process (every client thread) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def http_figures(load: LoadResult) -> dict[str, Any]:
    """Accept rate, latency and errors of one load phase."""
    outcomes = Counter(_outcome_key(sample) for sample in load.samples)
    examples: dict[str, str] = {}
    for sample in load.samples:
        key = _outcome_key(sample)
        if key != "201" and key not in examples:
            examples[key] = sample.error or ""
    accepted = outcomes.get("201", 0)
    answered = [sample.latency for sample in load.samples if sample.status is not None]
    return {
        "requests": len(load.samples),
        "accepted_201": accepted,
        "load_window_s": round(load.seconds, 3),
        "load_started_at": _iso(load.wall_started),
        "load_finished_at": _iso(load.wall_finished),
        "accept_rate_per_s": round(accepted / load.seconds, 2) if load.seconds > 0 else None,
        "latency_ms": measure.summarize_ms(answered),
        "latency_201_ms": measure.summarize_ms(
            [sample.latency for sample in load.samples if sample.status == 201]
        ),
        "outcomes": dict(sorted(outcomes.items())),
        "errors": {key: count for key, count in sorted(outcomes.items()) if key != "201"},
        "error_examples": examples,
        "replayed_answers": sum(1 for sample in load.samples if sample.replayed),
    }


def _outcome_key(sample: Sample) -> str:
    """``"201"``, another status code, or ``"exception:<Class>"``."""
    return str(sample.status) if sample.status is not None else f"exception:{sample.error}"


def _iso(timestamp: float) -> str:
    """A POSIX timestamp as ISO 8601 UTC."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds")


def accepted_ids(load: LoadResult) -> list[str]:
    """Ids of the orders the API accepted with 201."""
    return [sample.order_id for sample in load.samples if sample.order_id is not None]


def backlog_snapshot(orders: Any, invoices: Any, order_ids: list[str]) -> dict[str, Any]:
    """Work still queued right after the load: pending orders, outboxes and queues."""
    return {
        "pending_orders": measure.pending_count(orders, order_ids) if order_ids else 0,
        "orders_outbox_unpublished": measure.outbox_backlog(orders, "orders_outbox"),
        "invoices_outbox_unpublished": measure.outbox_backlog(invoices, "invoices_outbox"),
        "queue_depths": system.queue_depths(VHOST),
    }


def consistency(
    orders: Any, invoices: Any, order_ids: list[str], client_accepted: int
) -> dict[str, Any]:
    """Cross-checks: invoices for the run, dead letters, orders the client never saw accepted."""
    issued = measure.scalar(
        invoices,
        "SELECT count(*) FROM invoices WHERE order_id = ANY(%s) AND status = 'issued'",
        (order_ids,),
    )
    with_invoice = measure.scalar(
        orders,
        "SELECT count(*) FROM orders WHERE id = ANY(%s::uuid[]) AND status = 'confirmed' "
        "AND invoice_number IS NOT NULL",
        (order_ids,),
    )
    total_orders = measure.scalar(orders, "SELECT count(*) FROM orders")
    return {
        "invoices_issued_for_run_orders": int(issued),
        "confirmed_orders_with_invoice_number": int(with_invoice),
        "orders_dead_letters": int(
            measure.scalar(orders, "SELECT count(*) FROM orders_dead_letters")
        ),
        "invoices_dead_letters": int(
            measure.scalar(invoices, "SELECT count(*) FROM invoices_dead_letters")
        ),
        "orders_in_database": int(total_orders),
        "orders_without_a_201_seen_by_client": int(total_orders) - client_accepted,
    }


def scan_log(path: Path, examples: int = 12) -> dict[str, Any]:
    """Counts of log levels, tracebacks and restarts in the system log.

    Warning and error lines are also grouped by message pattern (digits and
    ids blanked) with a count each, so a repeated warning shows once.
    """
    levels: Counter[str] = Counter()
    patterns: Counter[str] = Counter()
    tracebacks = restarts = 0
    with path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            if line.startswith("Traceback (most recent call last)"):
                tracebacks += 1
            if "; restarting" in line:
                restarts += 1
            match = LEVEL.search(line[:160])
            if match is None:
                continue
            levels[match.group(1)] += 1
            if match.group(1) in ("WARNING", "ERROR", "CRITICAL"):
                message = TIMESTAMP.sub("", line.strip())
                patterns[NUMBERS.sub("#", message)[:300]] += 1
    return {
        "lines_by_level": dict(sorted(levels.items())),
        "tracebacks": tracebacks,
        "restarts": restarts,
        "warning_or_error_patterns": dict(patterns.most_common(examples)),
    }


def _log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of the system log."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def measured_run(args: argparse.Namespace, key_prefix: str, group: int) -> dict[str, Any]:
    """Warm up, load, snapshot the backlog, drain and compute every figure."""
    orders_db = measure.connect(system.pg_dsn(ORDERS_DB))
    invoices_db = measure.connect(system.pg_dsn(INVOICES_DB))
    try:
        warm_ids: list[str] = []
        warm: dict[str, Any] = {"orders": args.warmup}
        if args.warmup:
            warm_load = _load(args, 0, args.warmup, key_prefix)
            warm_ids = accepted_ids(warm_load)
            warm_drain = measure.wait_settled(
                orders_db, warm_ids, args.drain_timeout, since=warm_load.finished
            )
            warm.update(
                accepted=len(warm_ids),
                errors=http_figures(warm_load)["errors"],
                settle_seconds=round(warm_drain.seconds, 2),
            )
            if not warm_drain.drained:
                raise system.BenchSetupError(
                    f"warm-up orders still pending after {args.drain_timeout:.0f}s"
                )
        cpu_before, client_before = _cpu_jiffies(), _client_cpu_seconds()
        parts_before = procs.cpu_seconds(group)
        load = _load(args, args.warmup, args.orders, key_prefix)
        parts_after_load = procs.cpu_seconds(group)
        cpu_after, client_after = _cpu_jiffies(), _client_cpu_seconds()
        run_ids = accepted_ids(load)
        backlog = backlog_snapshot(orders_db, invoices_db, run_ids)
        backlog["taken_within_s"] = round(time.monotonic() - load.finished, 2)
        drain = measure.wait_settled(orders_db, run_ids, args.drain_timeout, since=load.finished)
        parts_after_drain = procs.cpu_seconds(group)
        saga = measure.saga_figures(measure.order_rows(orders_db, run_ids))
        saga["milestones_from_accept_ms"] = measure.milestones(orders_db, invoices_db, run_ids)
        saga.update(
            drained=drain.drained,
            still_pending=drain.samples[-1][1],
            drain_wait_s=round(drain.seconds, 2),
            drain_samples=drain.samples,
        )
        checks = consistency(orders_db, invoices_db, run_ids, len(warm_ids) + len(run_ids))
    finally:
        orders_db.close()
        invoices_db.close()
    return {
        "warmup": warm,
        "http": http_figures(load),
        "backlog_at_load_end": backlog,
        "saga": saga,
        "consistency": checks,
        "cpu_by_part": {
            "note": "CPU seconds per process group part; 'cores' = cpu_s / window",
            "load": procs.cpu_delta(parts_before, parts_after_load, load.seconds),
            "drain": procs.cpu_delta(parts_after_load, parts_after_drain, drain.seconds),
        },
        "resources_during_load": _resources(
            load, cpu_before, cpu_after, client_after - client_before
        ),
    }


def _load(args: argparse.Namespace, first: int, count: int, key_prefix: str) -> LoadResult:
    """One load phase against the orders API."""
    return run_load(
        HOST,
        args.orders_port,
        first=first,
        count=count,
        concurrency=args.concurrency,
        key_prefix=key_prefix,
        timeout=args.request_timeout,
    )


def _resources(
    load: LoadResult,
    before: tuple[int, int] | None,
    after: tuple[int, int] | None,
    client_cpu: float,
) -> dict[str, Any]:
    """Machine CPU busy share and the client's own CPU use over the load window."""
    busy = None
    if before and after and after[1] > before[1]:
        busy = round(100 * (after[0] - before[0]) / (after[1] - before[1]), 1)
    cores = os.cpu_count() or 1
    return {
        "machine_cpu_busy_percent": busy,
        "client_cpu_seconds": round(client_cpu, 2),
        "client_cpu_percent_of_machine": round(100 * client_cpu / (load.seconds * cores), 1)
        if load.seconds > 0
        else None,
        "loadavg_after": [round(value, 2) for value in os.getloadavg()],
    }


def _fmt_latency(summary: dict[str, Any]) -> str:
    """``p50 … p95 … p99 … max … mean …`` in milliseconds, or ``n/a``."""
    if not summary["count"]:
        return "n/a"
    return "  ".join(f"{name} {summary[name]:.1f}" for name in ("p50", "p95", "p99", "max", "mean"))


def _fmt_counts(counts: dict[str, int]) -> str:
    """``a 1, b 2`` or ``none``."""
    return ", ".join(f"{key} {value}" for key, value in counts.items()) or "none"


def _fmt_cores(parts: dict[str, dict[str, float]]) -> str:
    """``part 0.93, part 0.41`` (CPU cores in use on average), or ``n/a``."""
    shown = [f"{label} {value['cores']}" for label, value in parts.items() if value["cpu_s"] > 0]
    return ", ".join(shown) or "n/a"


def format_table(report: dict[str, Any]) -> str:
    """The report as a readable table."""
    p, m, h = report["parameters"], report["machine"], report["http"]
    b, s, c = report["backlog_at_load_end"], report["saga"], report["consistency"]
    r, log = report["resources_during_load"], report["system"]["log_summary"]
    rows: list[tuple[str, str]] = [
        ("== orderflow bench", f"distributed mode, {report['started_at']}"),
        ("machine", f"{m['cpu_count']} CPUs, {m['platform']}, Python {m['python']}"),
        (
            "servers",
            f"PostgreSQL {report['servers']['postgresql']}, "
            f"RabbitMQ {report['servers']['rabbitmq']}",
        ),
        (
            "parameters",
            f"{p['orders']} orders, concurrency {p['concurrency']}, warm-up "
            f"{p['warmup']}, workers {p['worker_processes']}x{p['worker_threads']} "
            f"threads per queue, HTTP threads {p['http_threads']}",
        ),
        ("percentiles", PERCENTILE_METHOD),
        ("== HTTP", "POST /orders, client side"),
        ("requests / accepted 201", f"{h['requests']} / {h['accepted_201']}"),
        ("load window", f"{h['load_window_s']:.2f} s"),
        ("accept rate", f"{h['accept_rate_per_s']} orders/s"),
        ("latency ms (all answers)", _fmt_latency(h["latency_ms"])),
        ("errors by status", _fmt_counts(h["errors"])),
        ("== backlog at load end", ""),
        ("pending run orders", f"{b['pending_orders']} (snapshot within {b['taken_within_s']} s)"),
        (
            "unpublished outbox rows",
            f"orders {b['orders_outbox_unpublished']}, invoices {b['invoices_outbox_unpublished']}",
        ),
        ("queue depths", _fmt_counts(b["queue_depths"])),
        ("== saga", "from the orders database (created_at -> settled_at)"),
        (
            "settled",
            f"{s['orders_found'] - s['still_pending']} / {s['orders_found']} "
            f"({'drained' if s['drained'] else 'NOT drained'} "
            f"{s['drain_wait_s']:.1f} s after load end)",
        ),
        ("by status", _fmt_counts(s["by_status"])),
        ("cancel reasons", _fmt_counts(s["cancel_reasons"])),
        (
            "saga throughput",
            f"{s['throughput_confirmed_per_s']} confirmed/s ({s['confirmed']} "
            f"over {s['first_accept_to_last_confirmation_s']} s, first accept "
            "to last confirmation)",
        ),
        ("accept->confirmed ms", _fmt_latency(s["accept_to_confirmed_ms"])),
        *[
            (f"  ..{MILESTONE_LABELS.get(name, name)}", _fmt_latency(summary))
            for name, summary in s["milestones_from_accept_ms"].items()
        ],
        ("", "* relays stamp published_at when a batch commits: an upper bound"),
        ("== checks", ""),
        ("invoices issued (run)", str(c["invoices_issued_for_run_orders"])),
        (
            "dead letters",
            f"orders {c['orders_dead_letters']}, invoices {c['invoices_dead_letters']}",
        ),
        ("orders w/o client 201", str(c["orders_without_a_201_seen_by_client"])),
        ("== machine during load", ""),
        ("CPU busy before start", f"{report['host_cpu_busy_percent_before_start']} %"),
        ("CPU busy (all cores)", f"{r['machine_cpu_busy_percent']} %"),
        ("cores used, load", _fmt_cores(report["cpu_by_part"]["load"])),
        ("cores used, drain", _fmt_cores(report["cpu_by_part"]["drain"])),
        (
            "bench client CPU",
            f"{r['client_cpu_seconds']} s = {r['client_cpu_percent_of_machine']} % of the machine",
        ),
        ("== system log", report["system"]["log"]),
        ("lines by level", _fmt_counts(log["lines_by_level"])),
        ("tracebacks / restarts", f"{log['tracebacks']} / {log['restarts']}"),
        (
            "stop",
            f"exit {report['system']['stop']['exit_code']} after "
            f"{report['system']['stop']['seconds']:.1f} s"
            f"{', killed' if report['system']['stop']['killed'] else ''}",
        ),
        ("run time", f"{report['run_seconds']:.1f} s"),
    ]
    lines = [
        f"{label:<26} {value}" if not label.startswith("==") else f"\n{label} {value}"
        for label, value in rows
    ]
    lines += [
        f"  {count:>6} x {pattern}" for pattern, count in log["warning_or_error_patterns"].items()
    ]
    return "\n".join(lines).lstrip("\n")


def _interrupt(signum: int, frame: object) -> NoReturn:
    """SIGTERM handler: unwind like Ctrl-C so the system is stopped in ``finally``."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status (0 when every order settled)."""
    parser = _parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    env = build_env(args)
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        print(f"bench: configuration error: {exc}", file=sys.stderr)
        return 2
    for port in (args.orders_port, args.invoices_port):
        if system.port_in_use(HOST, port):
            print(f"bench: {HOST}:{port} is already in use; pick other ports", file=sys.stderr)
            return 2
    idle_check = procs.host_busy_percent()
    if idle_check is not None and idle_check > 20:
        print(
            f"bench: warning: the host is already {idle_check}% busy before the run; "
            "other programs will skew the figures",
            file=sys.stderr,
        )
    results: Path = args.results_dir
    results.mkdir(parents=True, exist_ok=True)
    log_path = results / f"bench-{stamp}-system.log"
    report_path = results / f"bench-{stamp}.json"
    print(f"bench: resetting vhost {VHOST} and databases {ORDERS_DB}, {INVOICES_DB}", flush=True)
    system.reset_vhost(VHOST)
    system.recreate_databases([ORDERS_DB, INVOICES_DB])
    servers = system.server_versions(VHOST)
    print(f"bench: starting `orderflow up` (log: {log_path})", flush=True)
    with log_path.open("wb") as log:
        process = system.start_system(ROOT, env, log)
        try:
            ready_seconds = system.wait_ready(
                process, HOST, [args.orders_port, args.invoices_port], args.ready_timeout
            )
            print(
                f"bench: ready after {ready_seconds:.1f} s; warm-up {args.warmup}, "
                f"then {args.orders} orders at concurrency {args.concurrency}",
                flush=True,
            )
            figures = measured_run(args, f"bench-{stamp}", process.pid)
        except system.BenchSetupError as exc:
            print(
                f"bench: {exc}\n--- end of {log_path} ---\n{_log_tail(log_path)}", file=sys.stderr
            )
            return 1
        finally:
            print("bench: stopping the system", flush=True)
            stopped = system.stop_system(process)
    report = {
        "benchmark": "orderflow distributed mode: POST /orders -> confirmed saga",
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_seconds": round(time.monotonic() - started, 1),
        "percentile_method": PERCENTILE_METHOD,
        "parameters": {
            "orders": args.orders,
            "concurrency": args.concurrency,
            "warmup": args.warmup,
            "worker_processes": args.worker_processes,
            "worker_threads": args.worker_threads,
            "http_threads": args.http_threads,
            "orders_port": args.orders_port,
            "invoices_port": args.invoices_port,
            "drain_timeout_s": args.drain_timeout,
            "request_timeout_s": args.request_timeout,
            "client": "closed loop, one thread and one keep-alive http.client connection each",
            "broker_vhost": VHOST,
            "databases": [ORDERS_DB, INVOICES_DB],
        },
        "effective_settings": settings.to_env(),
        "machine": machine_info(),
        "servers": servers,
        "host_cpu_busy_percent_before_start": idle_check,
        "ready_seconds": round(ready_seconds, 2),
        **figures,
        "system": {
            "log": str(log_path.relative_to(ROOT) if log_path.is_relative_to(ROOT) else log_path),
            "stop": {
                "exit_code": stopped.exit_code,
                "seconds": round(stopped.seconds, 2),
                "killed": stopped.killed,
            },
            "log_summary": scan_log(log_path),
        },
    }
    report_path.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    print(format_table(report))
    print(f"\nreport: {report_path}")
    return 0 if report["saga"]["drained"] and report["http"]["accepted_201"] else 1


def _json_default(value: object) -> object:
    """JSON for the few non-JSON values in the report."""
    if isinstance(value, Decimal | dt.datetime | Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


if __name__ == "__main__":
    sys.exit(main())
