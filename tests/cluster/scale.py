"""Measured scale-out on this machine: orders confirmed per second on one RabbitMQ node
and one PostgreSQL server (the machine's own), and on a three-node RabbitMQ cluster
with a synchronous PostgreSQL standby (``tests.cluster.servers``), each with 1 and 2
worker processes per queue; quorum queues throughout.

``python -m tests.cluster.scale [--orders N] [--rounds R]`` (``nox -s cluster -- scale``
is not it: this is not a test). Each round runs every setup once, in turn, on a fresh
orderflow (its own databases and vhost): a warm-up, then a closed-loop burst of
``--orders`` orders with 32 client threads; the figure is the end-to-end rate, from the
first order accepted to the last one confirmed. Medians over the rounds go to stdout
and, with every round, to ``results/cluster-scale-<UTC>.json``. Every server runs on
the same 2 cores: the cluster's figures include what its replication costs them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.bench import measure
from tests.bench.client import run_load
from tests.bench.identity import customer_tokens
from tests.bench.system import reset_vhost
from tests.cluster.scenarios import Backing
from tests.cluster.servers import PostgresPair, RabbitCluster
from tests.integration.cluster import JWT_SECRET, LOCAL, Cluster, Servers

ROOT = Path(__file__).resolve().parents[2]
LOCAL_VHOST = "orderflow-scale"
CONCURRENCY = 32
WARMUP = 200


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster.scale", description=__doc__)
    parser.add_argument("--orders", type=int, default=3000, help="orders per burst (3000)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every setup (2)")
    parser.add_argument("--workers", default="1,2", help="worker processes per queue (1,2)")
    return parser


def burst(servers: Servers, vhost: str, workers: int, orders: int, workdir: Path) -> dict:
    """A fresh orderflow on ``servers``; the end-to-end rate of one burst."""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(
        workdir,
        vhost,
        servers,
        RABBITMQ_QUEUE_TYPE="quorum",
        WORKER_PROCESSES=str(workers),
        WORKER_THREADS="2",
        HTTP_THREADS="16",
    )
    cluster.create()
    try:
        cluster.start()
        tokens = customer_tokens(JWT_SECRET, "orderflow", "orderflow")
        prefix = uuid.uuid4().hex[:8]
        port = cluster.ports["orders"]
        connection = measure.connect(cluster.database_url("orders"))
        try:
            warm = run_load(
                "127.0.0.1",
                port,
                first=0,
                count=WARMUP,
                concurrency=CONCURRENCY,
                key_prefix=prefix,
                tokens=tokens,
                timeout=60,
            )
            measure.wait_settled(connection, _ids(warm), 120)
            load = run_load(
                "127.0.0.1",
                port,
                first=WARMUP,
                count=orders,
                concurrency=CONCURRENCY,
                key_prefix=prefix,
                tokens=tokens,
                timeout=60,
            )
            ids = _ids(load)
            drain = measure.wait_settled(connection, ids, 300, load.finished)
            saga = measure.saga_figures(measure.order_rows(connection, ids))
        finally:
            connection.close()
        return {
            "accepted": len(ids),
            "accepted_per_s": round(len(ids) / load.seconds, 1),
            "end_to_end_confirmed_per_s": saga["throughput_confirmed_per_s"],
            "accept_to_confirmed_ms": saga["accept_to_confirmed_ms"],
            "drained": drain.drained,
            "by_status": saga["by_status"],
        }
    finally:
        cluster.destroy()


def _ids(load: Any) -> list[str]:
    return [sample.order_id for sample in load.samples if sample.order_id is not None]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]
    base = Path(tempfile.mkdtemp(prefix="orderflow-scale-"))
    rabbit = RabbitCluster(base / "rabbitmq")
    postgres = PostgresPair()
    runs: dict[str, list[dict]] = {}
    try:
        rabbit.start()
        postgres.start()
        setups = {
            "1 RabbitMQ node, 1 PostgreSQL": (LOCAL, LOCAL_VHOST),
            "3 RabbitMQ nodes, PostgreSQL + synchronous standby": (
                Backing(rabbit, postgres).servers(),
                "orderflow-cluster",
            ),
        }
        for round_number in range(args.rounds):
            for name, (servers, vhost) in setups.items():
                for count in workers:
                    if servers is LOCAL:
                        reset_vhost(vhost)
                    label = f"{name}, {count} worker process{'es' if count > 1 else ''}"
                    started = time.monotonic()
                    figures = burst(
                        servers, vhost, count, args.orders, base / f"r{round_number}-{len(runs)}"
                    )
                    figures["seconds"] = round(time.monotonic() - started, 1)
                    runs.setdefault(label, []).append(figures)
                    print(f"round {round_number + 1}: {label}: {figures}", flush=True)
    finally:
        postgres.stop()
        rabbit.stop()
    summary = {
        label: {
            "end_to_end_confirmed_per_s": round(
                statistics.median(r["end_to_end_confirmed_per_s"] or 0 for r in results), 1
            ),
            "accepted_per_s": round(statistics.median(r["accepted_per_s"] for r in results), 1),
            "rounds": len(results),
        }
        for label, results in runs.items()
    }
    print("\n| setup | accepted/s | confirmed/s end to end |\n|---|---:|---:|")
    for label, figures in summary.items():
        print(
            f"| {label} | {figures['accepted_per_s']} | {figures['end_to_end_confirmed_per_s']} |"
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    results = ROOT / "results"
    results.mkdir(exist_ok=True)
    (results / f"cluster-scale-{stamp}.json").write_text(
        json.dumps({"orders": args.orders, "summary": summary, "runs": runs}, indent=1)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
