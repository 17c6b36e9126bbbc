"""The gateway's own benchmark: ``GET /me/orders/{id}`` on the real services.

    nox -s bench_gateway [-- --seconds 15 --rounds 3 --concurrency 8 --traces otlp]

Not a test: it starts ``orderflow up`` (the gateway, both fronts, workers and
relays on the local RabbitMQ and PostgreSQL, in a vhost and databases of its
own) and an OTLP sink when traces are on; places
``--orders`` orders for one customer and waits until every one is confirmed;
then, for each round, ``--concurrency`` client threads, each on one keep-alive
connection to the gateway, ask for those orders in turn for ``--seconds``.
Each request fans out to three upstream calls (the order, its timeline and its
invoice), so the figures show what the gateway's transport costs.

It prints requests per second, p50/p99 latency and CPU milliseconds per request
(gateway, and gateway plus both fronts) for each round and their medians, and
writes ``results/gateway-<UTC>.json`` with the commit it measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.bench import identity, measure, procs, sink, system
from tests.bench.client import order_body
from tests.bench.systems import HOST, ROOT, System

SINK_PORT = 4318
CUSTOMER = "bench-c0"
GATEWAY = System(
    "orderflow", 4433, "orderflow-bench-gateway", ("gwbench_orders", "gwbench_invoices"), None
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.gateway", description=__doc__)
    add = parser.add_argument
    add("--rounds", type=int, default=3, help="measured rounds (3)")
    add("--seconds", type=float, default=15.0, help="length of each round (15)")
    add("--warmup-seconds", type=float, default=3.0, help="unmeasured load before round 1 (3)")
    add("--concurrency", type=int, default=8, help="client threads, one connection each (8)")
    add("--orders", type=int, default=50, help="orders the clients ask for in turn (50)")
    add("--traces", choices=("otlp", "none"), default="otlp", help="tracing of every process")
    add("--results-dir", type=Path, default=ROOT / "results", help="where the report goes")
    return parser


def _request(
    connection: http.client.HTTPConnection, method: str, path: str, headers: dict, body=None
) -> tuple[int, bytes, bool]:
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read(), response.will_close


def _place_orders(port: int, token: str, count: int) -> list[str]:
    """Place ``count`` orders through the orders front; their ids."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    ids = []
    for index in range(count):
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": f"gateway-bench-{index}",
        }
        status, data, _ = _request(connection, "POST", "/orders", headers, order_body(index))
        if status != 201:
            raise system.BenchSetupError(f"POST /orders answered {status}: {data[:200]!r}")
        ids.append(str(json.loads(data)["id"]))
    connection.close()
    return ids


def _wait_confirmed(port: int, token: str, ids: list[str], timeout: float = 120.0) -> None:
    """Poll the gateway until every order is confirmed with its invoice."""
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    deadline = time.monotonic() + timeout
    waiting = list(ids)
    while waiting:
        status, data, _ = _request(connection, "GET", f"/me/orders/{waiting[0]}", headers)
        answer = json.loads(data) if status == 200 else {}
        if answer.get("order", {}).get("status") == "confirmed" and answer.get("invoice"):
            waiting.pop(0)
            continue
        if time.monotonic() > deadline:
            raise system.BenchSetupError(f"{len(waiting)} orders not confirmed in {timeout:.0f}s")
        time.sleep(0.1)
    connection.close()


def _load(port: int, token: str, ids: list[str], threads: int, seconds: float) -> dict[str, Any]:
    """``threads`` closed-loop clients for ``seconds``; latencies and failures."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    latencies: list[list[float]] = [[] for _ in range(threads)]
    failures: list[int] = [0] * threads
    partial: list[int] = [0] * threads
    start = threading.Barrier(threads + 1)
    stop_at: list[float] = []

    def client(number: int) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=30)
        start.wait()
        turn = number
        while time.monotonic() < stop_at[0]:
            path = f"/me/orders/{ids[turn % len(ids)]}"
            turn += threads
            began = time.perf_counter()
            try:
                status, data, closing = _request(connection, "GET", path, headers)
            except (OSError, http.client.HTTPException):
                failures[number] += 1
                connection.close()
                connection = http.client.HTTPConnection(HOST, port, timeout=30)
                continue
            latencies[number].append(time.perf_counter() - began)
            if status != 200:
                failures[number] += 1
            elif json.loads(data)["partial_failures"]:
                partial[number] += 1
            if closing:
                connection.close()
                connection = http.client.HTTPConnection(HOST, port, timeout=30)
        connection.close()

    workers = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    began = time.monotonic()
    stop_at.append(began + seconds)
    start.wait()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - began
    every = [value for values in latencies for value in values]
    return {
        "requests": len(every),
        "seconds": round(elapsed, 2),
        "per_s": round(len(every) / elapsed, 1),
        "latency_ms": measure.summarize_ms(every),
        "failures": sum(failures),
        "partial_failures": sum(partial),
    }


PARTS = ("gateway-api", "orders-api", "invoices-api")  # procs' labels of the three fronts


def _round(port: int, token: str, ids: list[str], args: argparse.Namespace, group: int) -> dict:
    """One measured round; CPU per request of the gateway, and of the three fronts."""
    before = procs.cpu_seconds(group)
    figures = _load(port, token, ids, args.concurrency, args.seconds)
    after = procs.cpu_seconds(group)
    requests = max(figures["requests"], 1)
    spent = {label: after.get(label, 0.0) - before.get(label, 0.0) for label in PARTS}
    figures["cpu_ms_per_request"] = {
        "gateway": round(1000 * spent["gateway-api"] / requests, 3),
        "gateway_and_fronts": round(1000 * sum(spent.values()) / requests, 3),
    }
    return figures


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT, check=False)
    return done.stdout.strip() + ("+changes" if dirty.returncode else "")


def _measure(
    up: subprocess.Popen[bytes], sut: System, token: str, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Wait for the system, place and settle the orders, warm up, then the rounds."""
    gateway_port = sut.orders_port + 2
    system.wait_ready(up, HOST, [sut.orders_port, sut.orders_port + 1, gateway_port], 120)
    ids = _place_orders(sut.orders_port, token, args.orders)
    _wait_confirmed(gateway_port, token, ids)
    _load(gateway_port, token, ids, args.concurrency, args.warmup_seconds)
    rounds = []
    for number in range(args.rounds):
        figures = _round(gateway_port, token, ids, args, up.pid)
        rounds.append(figures)
        print(
            f"round {number + 1}: {figures['per_s']} req/s, "
            f"p50 {figures['latency_ms']['p50']} ms, "
            f"p99 {figures['latency_ms']['p99']} ms, "
            f"gateway CPU {figures['cpu_ms_per_request']['gateway']} ms/request, "
            f"failures {figures['failures']}",
            flush=True,
        )
    return rounds


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the gateway benchmark; 0 when every round completed without failures."""
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    secret = identity.new_secret()
    settings_env = {"ORDERFLOW_JWT_SECRET": secret}
    from ops.settings import Settings

    settings = Settings.from_env({**os.environ, **settings_env})
    token = identity.customer_tokens(secret, settings.jwt_issuer, settings.jwt_audience)[CUSTOMER]
    bench_args = argparse.Namespace(
        worker_processes=1,
        worker_threads=8,
        http_threads=16,
        credit_limit="1000000000.00",
        jwt_secret=secret,
        traces=args.traces,
        sink_port=SINK_PORT,
        queue_type="classic",
    )
    sut = GATEWAY
    sut.prepare()
    env = sut.env(bench_args, dict(os.environ))
    log_path = args.results_dir / f"gateway-{stamp}.log"
    with log_path.open("wb") as log:
        otlp_sink = sink.start(SINK_PORT, log, ROOT) if args.traces == "otlp" else None
        up = system.start_system(ROOT, env, log)
        try:
            rounds = _measure(up, sut, token, args)
        finally:
            system.stop_system(up)
            if otlp_sink is not None:
                sink.stop(otlp_sink)
    report = {
        "stamp": stamp,
        "commit": _commit(),
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "traces": args.traces,
        "rounds": rounds,
        "median": {
            "per_s": statistics.median(r["per_s"] for r in rounds),
            "p50_ms": statistics.median(r["latency_ms"]["p50"] for r in rounds),
            "p99_ms": statistics.median(r["latency_ms"]["p99"] for r in rounds),
            "gateway_cpu_ms": statistics.median(r["cpu_ms_per_request"]["gateway"] for r in rounds),
            "gateway_and_fronts_cpu_ms": statistics.median(
                r["cpu_ms_per_request"]["gateway_and_fronts"] for r in rounds
            ),
        },
        "log": system.log_summary(log_path),
    }
    path = args.results_dir / f"gateway-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    median = report["median"]
    print(
        f"median of {len(rounds)}: {median['per_s']} req/s, p50 {median['p50_ms']} ms, "
        f"p99 {median['p99_ms']} ms, CPU per request {median['gateway_cpu_ms']} ms gateway, "
        f"{median['gateway_and_fronts_cpu_ms']} ms with both fronts ({report['commit']})\n{path}"
    )
    return 0 if all(r["failures"] == 0 for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
