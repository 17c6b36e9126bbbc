"""Soak: does a worker's memory keep growing under a steady open-loop load?

    python -m tests.bench.soak [--minutes 10] [--rate 100] [--warmup-minutes 2]
                               [--sample-seconds 10] [--max-growth 0.10]   (or: nox -s soak -- ...)

1. Prepares its own clean broker vhost ``orderflow-soak`` and databases
   ``orderflow_soak_orders`` / ``orderflow_soak_invoices``, its own data
   directory (``var/soak``), HTTP ports (4343/4344, the gateway 4345) and worker/relay metrics
   ports, so it can run beside ``nox -s bench``. Refuses taken ports.
2. Starts ``orderflow up`` as :mod:`tests.bench.run` does, with a random
   ``ORDERFLOW_JWT_SECRET`` and one token per benchmark customer.
3. Posts orders at ``--rate`` per second for ``--minutes`` with the open-loop
   generator (:mod:`tests.bench.openloop`, one phase); the first
   ``--warmup-minutes`` of it are the warm-up. A sampler thread records the
   RSS of every process of the system every ``--sample-seconds``, at the end
   of the warm-up, and until the orders drained (:mod:`tests.bench.memory`).
4. Waits until every accepted order settled, stops the system and writes
   ``results/soak-<UTC>.json`` (time series included) beside the system log.

Passes (exit 0) when at least one order was accepted, every accepted order
settled, and every worker process (``*-worker``) grew at most ``--max-growth``
from the end of the warm-up to its largest RSS after it, with no worker
restarted meanwhile. Exit 1 when it fails, 2 on a configuration error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from ops.settings import Settings, SettingsError
from tests.bench import identity, measure, memory, openloop, system
from tests.bench.soak_report import format_table, http_figures, settled_by_status
from tests.bench.system import log_summary

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
VHOST = "orderflow-soak"
BROKER_URL = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
ORDERS_DB = "orderflow_soak_orders"
INVOICES_DB = "orderflow_soak_invoices"
DATA_DIR = ROOT / "var" / "soak"  # the metrics directories live here, apart from the bench's
METRICS_PORTS = {  # the defaults (9191, 9192, 9301, 9302) stay free for the bench
    "ORDERS_WORKER_METRICS_PORT": 9193,
    "INVOICES_WORKER_METRICS_PORT": 9194,
    "ORDERS_RELAY_METRICS_PORT": 9303,
    "INVOICES_RELAY_METRICS_PORT": 9304,
}


def _parser() -> argparse.ArgumentParser:
    """The command line of the soak."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--minutes", type=float, default=10.0, help="load duration, warm-up included (10)")
    add("--rate", type=float, default=100.0, help="orders per second, open loop (100)")
    add("--warmup-minutes", type=float, default=2.0, help="first part of the load not judged (2)")
    add("--sample-seconds", type=float, default=10.0, help="RSS sampling interval (10)")
    add("--max-growth", type=float, default=0.10, help="allowed worker RSS growth (0.10 = 10%%)")
    add("--orders-port", type=int, default=4343, help="orders API port (4343)")
    add("--invoices-port", type=int, default=4344, help="invoices API port (4344)")
    add("--worker-processes", type=int, default=Settings.worker_processes, help="WORKER_PROCESSES")
    add("--worker-threads", type=int, default=Settings.worker_threads, help="WORKER_THREADS")
    add("--http-threads", type=int, default=Settings.http_threads, help="HTTP_THREADS")
    add("--credit-limit", default="1000000000.00", help="INVOICES_DEFAULT_CREDIT_LIMIT")
    add("--max-in-flight", type=int, default=512, help="open-loop concurrency cap (512)")
    add("--drain-timeout", type=float, default=300.0, help="seconds to wait for settling (300)")
    add("--ready-timeout", type=float, default=120.0, help="seconds to wait for /ready (120)")
    add("--request-timeout", type=float, default=60.0, help="client request timeout (60)")
    add("--results-dir", type=Path, default=ROOT / "results", help="where reports go (results/)")
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse values that cannot make a meaningful soak."""
    if min(args.minutes, args.rate, args.sample_seconds) <= 0:
        parser.error("--minutes, --rate and --sample-seconds must be positive")
    if not 0 <= args.warmup_minutes < args.minutes:
        parser.error("--warmup-minutes must be at least 0 and less than --minutes")
    if args.max_growth < 0:
        parser.error("--max-growth must not be negative")
    if min(args.worker_processes, args.worker_threads, args.http_threads, args.max_in_flight) < 1:
        parser.error("process, thread and in-flight counts must be at least 1")
    if min(args.drain_timeout, args.ready_timeout, args.request_timeout) <= 0:
        parser.error("timeouts must be positive")
    if args.orders_port == args.invoices_port:
        parser.error("--orders-port and --invoices-port must differ")


def build_env(args: argparse.Namespace, jwt_secret: str) -> dict[str, str]:
    """The environment of ``orderflow up``: ours plus the soak's own settings."""
    return {
        **os.environ,
        "BROKER_URL": BROKER_URL,
        "ORDERS_DATABASE_URL": system.pg_url(ORDERS_DB),
        "INVOICES_DATABASE_URL": system.pg_url(INVOICES_DB),
        "ORDERFLOW_DATA_DIR": str(DATA_DIR),
        "ORDERFLOW_HOST": HOST,
        "ORDERS_PORT": str(args.orders_port),
        "INVOICES_PORT": str(args.invoices_port),
        "GATEWAY_PORT": str(args.invoices_port + 1),
        "WORKER_PROCESSES": str(args.worker_processes),
        "WORKER_THREADS": str(args.worker_threads),
        "HTTP_THREADS": str(args.http_threads),
        "INVOICES_DEFAULT_CREDIT_LIMIT": args.credit_limit,
        "ORDERFLOW_JWT_SECRET": jwt_secret,
        **{name: str(port) for name, port in METRICS_PORTS.items()},
    }


def verdict(
    growths: dict[str, memory.Growth], max_growth: float, saga: dict[str, Any]
) -> list[str]:
    """Why the soak fails; empty when it passes."""
    reasons = []
    if not saga["accepted"]:
        reasons.append("no order was accepted")
    if not saga["drained"]:
        reasons.append(f"{saga['still_pending']} accepted orders never settled")
    return reasons + memory.worker_verdict(growths, max_growth)


def _print_snapshot(snapshot: memory.Snapshot) -> None:
    """One progress line: the summed RSS of the workers and of every process."""
    workers = sum(rss for name, rss in snapshot.rss_kib.items() if memory.is_worker(name))
    total = sum(snapshot.rss_kib.values())
    print(
        f"soak: t={snapshot.taken:6.0f} s  workers {workers / 1024:7.1f} MiB  "
        f"all {total / 1024:7.1f} MiB  ({len(snapshot.rss_kib)} processes)",
        flush=True,
    )


def soak_run(args: argparse.Namespace, tokens: dict[str, str], stamp: str, group: int) -> dict:
    """Load, sample memory meanwhile, drain; every figure but the system's."""
    warmup = args.warmup_minutes * 60
    sampler = memory.Sampler(
        lambda: memory.group_rss(group),
        memory.due_times(args.sample_seconds, warmup),
        _print_snapshot,
    )
    orders_db = measure.connect(system.pg_dsn(ORDERS_DB))
    try:
        sampler.start()
        load = openloop.run_open_loop(
            HOST,
            args.orders_port,
            rate=args.rate,
            count=openloop.orders_for(args.rate, args.minutes * 60),
            first=0,
            key_prefix=f"soak-{stamp}",
            tokens=tokens,
            timeout=args.request_timeout,
            max_in_flight=args.max_in_flight,
        )
        load_ended_at = time.monotonic() - sampler.started_at
        ids = [sample.order_id for sample in load.samples if sample.order_id is not None]
        print(f"soak: load done, {len(ids)} accepted; waiting for them to settle", flush=True)
        drain = measure.wait_settled(orders_db, ids, args.drain_timeout, since=load.finished)
        snapshots = sampler.stop()
        by_status = settled_by_status(orders_db, ids)
    finally:
        if sampler.is_alive():
            sampler.stop()
        orders_db.close()
    growths = memory.growth(snapshots, warmup)
    saga = {
        "accepted": len(ids),
        "drained": drain.drained,
        "still_pending": drain.samples[-1][1],
        "drain_wait_s": round(drain.seconds, 2),
        "by_status": by_status,
    }
    return {
        "http": http_figures(load, window=60.0),
        "saga": saga,
        "memory": {
            "load_ended_at_s": round(load_ended_at, 2),
            "growth": {name: vars(result) for name, result in growths.items()},
            "series": [vars(snapshot) for snapshot in snapshots],
        },
        "failures": verdict(growths, args.max_growth, saga),
    }


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def _interrupt(signum: int, frame: object) -> NoReturn:
    """SIGTERM handler: unwind like Ctrl-C so the system is stopped in ``finally``."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the soak; returns the exit status (0 when it passed)."""
    parser = _parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    signal.signal(signal.SIGTERM, _interrupt)
    started_at = dt.datetime.now(dt.UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    secret = identity.new_secret()
    env = build_env(args, secret)
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        print(f"soak: configuration error: {exc}", file=sys.stderr)
        return 2
    tokens = identity.customer_tokens(secret, settings.jwt_issuer, settings.jwt_audience)
    ports = [args.orders_port, args.invoices_port, *METRICS_PORTS.values()]
    taken = [port for port in ports if system.port_in_use(HOST, port)]
    if taken:
        print(f"soak: {HOST} ports {taken} are already in use", file=sys.stderr)
        return 2
    args.results_dir.mkdir(parents=True, exist_ok=True)
    log_path = args.results_dir / f"soak-{stamp}-system.log"
    print(f"soak: resetting vhost {VHOST} and databases {ORDERS_DB}, {INVOICES_DB}", flush=True)
    system.reset_vhost(VHOST)
    system.recreate_databases([ORDERS_DB, INVOICES_DB])
    print(f"soak: starting `orderflow up` (log: {log_path})", flush=True)
    with log_path.open("wb") as log:
        process = system.start_system(ROOT, env, log)
        try:
            ready = system.wait_ready(
                process, HOST, [args.orders_port, args.invoices_port], args.ready_timeout
            )
            print(
                f"soak: ready after {ready:.1f} s; {args.rate:g} orders/s for "
                f"{args.minutes:g} min, the first {args.warmup_minutes:g} min warm-up",
                flush=True,
            )
            figures = soak_run(args, tokens, stamp, process.pid)
        except system.BenchSetupError as exc:
            print(f"soak: {exc} (see {log_path})", file=sys.stderr)
            return 1
        finally:
            print("soak: stopping the system", flush=True)
            stopped = system.stop_system(process)
    report = {
        "soak": "orderflow distributed mode: worker RSS under a steady open-loop load",
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "parameters": {
            key: _shown(value) if isinstance(value, Path) else value
            for key, value in vars(args).items()
        },
        "passed": not figures["failures"],
        **figures,
        "system": {
            "log": _shown(log_path),
            "stop": vars(stopped),
            "log_summary": log_summary(log_path),
        },
    }
    report_path = args.results_dir / f"soak-{stamp}.json"
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    print(format_table(report))
    print(f"\nreport: {report_path}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
