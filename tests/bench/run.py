"""Side-by-side benchmark: orderflow against the naive chain, on the same servers, in one run.

    nox -s bench [-- --rounds 3 --orders 6000 ...]     (or: python -m tests.bench.run ...)

Not a test: it measures, prints a table and writes ``results/bench-<UTC>.json``
(with every run's figures), its picture ``results/bench-<UTC>.png``
(:mod:`tests.bench.picture`), each run's system log and, with ``--profile`` (the
default), a py-spy profile of every process under ``results/bench-<UTC>/``.

For each of ``--rounds`` rounds it runs orderflow (distributed mode, every
guarantee on, tracing exported over OTLP to a local sink) and the naive
reference chain of :mod:`tests.bench.naive`, alternating which goes first,
then standalone mode. Each run starts the system fresh on a reset vhost and
databases (with ``--history N``, migrated and loaded with ``N`` settled
orders first, unmeasured: :mod:`tests.bench.history`), warms it up, then runs
the phases of :mod:`tests.bench.phases`: the sustained closed-loop burst,
then open-loop arrivals at 50 % and 80 % of the sustained rate the run just
measured. Orderflow runs also report the sizes of the batches its actors
logged (:mod:`tests.bench.batches`). The summary gives the median of each
figure over the rounds and the ratio orderflow / naive.

Everything runs on one machine: the load generators, PostgreSQL, RabbitMQ and
every process of the system share its CPUs; the report says which part used
how much. ``print`` is the output here (ruff ignores T20 under ``tests/``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from ops.settings import Settings
from tests.bench import batches, history, identity, phases, procs, profiling, sink, system
from tests.bench.systems import HOST, SYSTEMS, System, systems

ROOT = Path(__file__).resolve().parents[2]
SINK_PORT = 4318


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--rounds", type=int, default=3, help="runs of each system, alternating (3)")
    add("--systems", default=",".join(SYSTEMS), help=f"which to run ({','.join(SYSTEMS)})")
    add("--orders", type=int, default=6000, help="orders of the sustained burst (6000)")
    add("--concurrency", type=int, default=32, help="closed-loop client threads (32)")
    add("--warmup", type=int, default=300, help="warm-up orders, not counted (300)")
    add("--latency-seconds", type=float, default=15.0, help="each open-loop phase (15)")
    add("--fractions", default="0.5,0.8", help="open-loop rates, of the sustained rate (0.5,0.8)")
    add("--worker-processes", type=int, default=1, help="orderflow WORKER_PROCESSES (1)")
    add(
        "--worker-threads",
        type=int,
        default=Settings.worker_threads,
        help=f"orderflow's WORKER_THREADS; naive always uses 8 ({Settings.worker_threads})",
    )
    add(
        "--http-threads",
        type=int,
        default=Settings.http_threads,
        help=f"orderflow's HTTP_THREADS, every front ({Settings.http_threads})",
    )
    add("--naive-http-threads", type=int, default=8, help="the naive front's threads (8)")
    add("--traces", choices=("otlp", "none"), default="otlp", help="orderflow tracing (otlp)")
    add(
        "--queue-type",
        choices=("classic", "quorum"),
        default="classic",
        help="orderflow's RABBITMQ_QUEUE_TYPE (classic)",
    )
    add(
        "--standalone-traces",
        choices=("otlp", "none"),
        default="none",
        help="standalone mode's tracing (none: its default, one process has no collector)",
    )
    add(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="py-spy profile of an extra burst after the measured phases (on)",
    )
    add("--profile-orders", type=int, default=4000, help="orders of the profiled burst (4000)")
    add(
        "--history",
        type=int,
        default=0,
        help="settled orders (with their invoices) preloaded before each orderflow and naive "
        "run, over 10,000 customers; not measured; standalone (SQLite) ignores it (0)",
    )
    add("--credit-limit", default="1000000000.00", help="generous: no order is rejected")
    add("--drain-timeout", type=float, default=300.0, help="seconds for orders to settle (300)")
    add("--ready-timeout", type=float, default=120.0, help="seconds to wait for /ready (120)")
    add("--request-timeout", type=float, default=60.0, help="client socket timeout (60)")
    add("--results-dir", type=Path, default=ROOT / "results", help="where reports go")
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in ("rounds", "orders", "concurrency", "worker_processes", "worker_threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.history < 0:
        parser.error("--history must be at least 0")
    args.systems = [name.strip() for name in args.systems.split(",") if name.strip()]
    unknown = set(args.systems) - set(SYSTEMS)
    if unknown or not args.systems:
        parser.error(f"--systems: choose among {', '.join(SYSTEMS)}")
    args.fractions = [float(value) for value in args.fractions.split(",") if value]
    if any(not 0 < value <= 1.5 for value in args.fractions):
        parser.error("--fractions must be between 0 and 1.5")


def run_one(sut: System, args: argparse.Namespace, label: str, folder: Path) -> dict[str, Any]:
    """Start ``sut`` fresh, run every phase, stop it; returns the run's figures."""
    sut.prepare()
    log_path = folder / f"{label}.log"
    env = sut.env(args, dict(os.environ))
    preloaded = _preload(sut, args, env)
    probe_ms = procs.speed_probe()  # how fast the machine is just now, before the system starts
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            sut.command(args),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        orders = None
        try:
            system.wait_ready(process, HOST, [sut.orders_port], args.ready_timeout)
            orders = sut.orders()
            figures: dict[str, Any] = {
                "system": sut.name,
                "run": label,
                "probe_ms": probe_ms,
                **preloaded,
            }
            figures["warmup"] = phases.warm_up(sut, orders, args, label)
            begun = log_path.stat().st_size
            figures["sustained"] = phases.sustained(sut, orders, args, label, process.pid)
            sustained_log = (begun, log_path.stat().st_size)
            rate = figures["sustained"]["sustained_confirmed_per_s"]
            first = args.warmup + args.orders
            figures["latency"] = {}
            for fraction in args.fractions if sut.name != "standalone" else []:
                figures["latency"][f"{round(100 * fraction)}%"] = phases.latency(
                    sut, orders, args, label, first, max(1.0, rate * fraction)
                )
                first += 100_000
            figures["peak_memory_mib"] = procs.peak_memory_mib(process.pid)
            if args.profile:  # last, so that sampling costs none of the figures above
                recorders = profiling.start(process.pid, folder, label)
                try:
                    figures["profiled"] = phases.profiled(sut, orders, args, label, first)
                finally:
                    figures["profile"] = profiling.stop(recorders)
        finally:
            if orders is not None:
                orders.close()
            stopped = system.stop_system(process)
    figures["log"] = {
        **system.log_summary(log_path),
        "file": log_path.name,
        "stop_exit": stopped.exit_code,
    }
    if sut.name == "orderflow":
        figures["batch_sizes"] = batches.run_figures(log_path, sustained_log)
    return figures


def _preload(sut: System, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """With ``--history``, migrate the fresh databases of ``sut`` and load the history into
    them, before the system starts; ``{"history": its timings}``, or nothing."""
    if not args.history or sut.name not in history.PLANS:
        return {}
    sut.migrate(env)
    return {"history": history.load(sut.name, sut.databases, args.history, args.credit_limit)}


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def _sink(folder: Path) -> subprocess.Popen[bytes]:
    try:
        return sink.start(SINK_PORT, (folder / "otlp-sink.log").open("wb"), ROOT)
    except RuntimeError as exc:
        raise system.BenchSetupError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every run completed."""
    from tests.bench import summary  # the report; imported here to keep this module short

    parser = _parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    signal.signal(signal.SIGTERM, _interrupt)
    if args.profile and not profiling.available():
        print("bench: py-spy is not installed; running without profiles", file=sys.stderr)
        args.profile = False
    started_at = dt.datetime.now(dt.UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    folder = args.results_dir / f"bench-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    args.jwt_secret = identity.new_secret()
    args.tokens = identity.customer_tokens(args.jwt_secret, "orderflow", "orderflow")
    args.sink_port = SINK_PORT
    suts = systems(folder)
    busy = procs.host_busy_percent()
    runs: list[dict[str, Any]] = []
    otlp_sink = _sink(folder)
    try:
        for number in range(1, args.rounds + 1):
            pair = [name for name in ("orderflow", "naive") if name in args.systems]
            order = pair if number % 2 else pair[::-1]
            order += [name for name in args.systems if name not in pair]
            for name in order:
                label = f"{name}-r{number}"
                print(f"bench: {label} ...", flush=True)
                begun = time.monotonic()
                runs.append(run_one(suts[name], args, label, folder))
                print(f"bench: {label} done in {time.monotonic() - begun:.0f} s", flush=True)
    except (system.BenchSetupError, phases.PhaseError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        sink.stop(otlp_sink)
    report = {
        "benchmark": "orderflow vs the naive chain: POST /orders -> confirmed",
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": "nox -s bench -- " + " ".join(argv if argv is not None else sys.argv[1:]),
        "parameters": {
            key: value
            for key, value in vars(args).items()
            if key not in ("tokens", "jwt_secret", "results_dir")
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "host_busy_percent_before": busy,
            "servers": system.server_versions("/"),
        },
        "runs": runs,
    }
    report["summary"] = summary.summarize(runs)
    path = args.results_dir / f"bench-{stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(summary.format_table(report))
    print(f"\nreport: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    _picture(path)
    return 0


def _picture(report: Path) -> None:
    """Draw the report's picture beside it. The JSON is the source of truth: without
    matplotlib, or should drawing fail, the run goes on with one line saying so."""
    try:
        from tests.bench import picture
    except ImportError as exc:
        print(f"bench: no picture, matplotlib is not installed ({exc})", file=sys.stderr)
        return
    try:
        drawn = picture.draw(json.loads(report.read_text()), report.with_suffix(".png"))
    except Exception as exc:  # the figures are safe in the JSON already
        print(f"bench: no picture: {type(exc).__name__}: {exc}", file=sys.stderr)
        return
    print(f"picture: {drawn.relative_to(ROOT) if drawn.is_relative_to(ROOT) else drawn}")


if __name__ == "__main__":
    sys.exit(main())
