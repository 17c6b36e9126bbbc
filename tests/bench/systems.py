"""The systems the benchmark compares, each started fresh on clean servers.

- ``orderflow``: distributed mode, ``orderflow up`` (both fronts, one worker pool
  per queue, one relay per outbox), every guarantee on: outbox, publisher
  confirms, dedupe keys, idempotency keys, JWT, tracing to an OTLP sink.
- ``naive``: the reference chain of :mod:`tests.bench.naive` (insert, ``send()``
  without confirms, no outbox, no dedupe), one front with 8 threads and one
  worker process with 8 threads on the same RabbitMQ and PostgreSQL.
- ``standalone``: ``orderflow standalone`` (one process, SQLite, stub broker), with
  its default of no trace export unless ``--standalone-traces otlp``.

Each system has its own RabbitMQ vhost and databases (or data directory),
reset before every start, so runs never see each other's rows or messages.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tests.bench import measure, system

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
SYSTEMS = ("orderflow", "naive", "standalone")


class Orders(Protocol):
    """What the benchmark reads of a system's orders."""

    def pending_count(self, order_ids: list[str]) -> int: ...
    def order_rows(self, order_ids: list[str]) -> list[measure.OrderRow]: ...
    def close(self) -> None: ...


class PostgresOrders:
    """The ``orders`` table of a PostgreSQL database."""

    def __init__(self, database: str) -> None:
        self.connection = measure.connect(system.pg_dsn(database))

    def pending_count(self, order_ids: list[str]) -> int:
        return measure.pending_count(self.connection, order_ids)

    def order_rows(self, order_ids: list[str]) -> list[measure.OrderRow]:
        return measure.order_rows(self.connection, order_ids)

    def close(self) -> None:
        self.connection.close()


class SqliteOrders:
    """The ``orders`` table of standalone mode's SQLite file (ids stored as hex)."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, timeout=30, check_same_thread=False)

    def _rows(self, columns: str, order_ids: list[str]) -> list[tuple[Any, ...]]:
        keys = [uuid.UUID(order_id).hex for order_id in order_ids]
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found += self.connection.execute(
                f"SELECT {columns} FROM orders WHERE id IN ({marks})", chunk
            ).fetchall()
        return found

    def pending_count(self, order_ids: list[str]) -> int:
        return sum(1 for (status,) in self._rows("status", order_ids) if status == "pending")

    def order_rows(self, order_ids: list[str]) -> list[measure.OrderRow]:
        rows = self._rows("status, cancel_reason, created_at, settled_at", order_ids)
        return [
            measure.OrderRow(status, reason, _stamp(created), _stamp(settled))  # type: ignore[arg-type]
            for status, reason, created, settled in rows
        ]

    def close(self) -> None:
        self.connection.close()


def _stamp(value: str | None) -> Any:
    return None if value is None else dt.datetime.fromisoformat(value)


@dataclass(frozen=True)
class System:
    """One system under test: how to prepare, start and read it."""

    name: str
    orders_port: int
    vhost: str | None  # RabbitMQ vhost, None for standalone
    databases: tuple[str, ...]  # PostgreSQL databases (orders first)
    data_dir: Path | None  # standalone's SQLite directory

    @property
    def has_outbox(self) -> bool:
        return self.name == "orderflow"

    def prepare(self) -> None:
        """Reset the system's vhost and databases (or data directory)."""
        if self.vhost is not None:
            system.reset_vhost(self.vhost)
        if self.databases:
            system.recreate_databases(list(self.databases))
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir.mkdir(parents=True)

    def migrate(self, env: dict[str, str]) -> None:
        """Create the system's tables now, as its start would (that start then finds
        nothing to do); raises :class:`system.BenchSetupError` if it fails."""
        module = "tests.bench.naive" if self.name == "naive" else "ops.cli"
        done = subprocess.run(
            [sys.executable, "-m", module, "migrate"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise system.BenchSetupError(f"{self.name} migrate failed: {done.stderr.strip()}")

    def command(self, args: Any) -> list[str]:
        """The command line that starts the whole system."""
        if self.name == "naive":
            return [
                sys.executable,
                "-m",
                "tests.bench.naive",
                "up",
                "--host",
                HOST,
                "--port",
                str(self.orders_port),
                "--threads",
                str(args.naive_http_threads),
            ]
        return [sys.executable, "-m", "ops.cli", "up" if self.name == "orderflow" else "standalone"]

    def env(self, args: Any, base: dict[str, str]) -> dict[str, str]:
        """The environment of the system's processes."""
        if self.name == "naive":
            return {
                **base,
                "NAIVE_ORDERS_DATABASE_URL": system.pg_url(self.databases[0]),
                "NAIVE_INVOICES_DATABASE_URL": system.pg_url(self.databases[1]),
                "NAIVE_BROKER_URL": f"amqp://guest:guest@{HOST}:5672/{self.vhost}",
            }
        env = {
            **base,
            "ORDERFLOW_HOST": HOST,
            "ORDERS_PORT": str(self.orders_port),
            "INVOICES_PORT": str(self.orders_port + 1),
            "GATEWAY_PORT": str(self.orders_port + 2),
            "WORKER_PROCESSES": str(args.worker_processes),
            "WORKER_THREADS": str(args.worker_threads),
            "HTTP_THREADS": str(args.http_threads),
            "INVOICES_DEFAULT_CREDIT_LIMIT": args.credit_limit,
            "ORDERFLOW_JWT_SECRET": args.jwt_secret,
            "OTEL_TRACES_EXPORTER": args.traces,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://{HOST}:{args.sink_port}/v1/traces",
            "ORDERS_WORKER_METRICS_PORT": str(self.orders_port + 10),
            "INVOICES_WORKER_METRICS_PORT": str(self.orders_port + 11),
            "ORDERS_RELAY_METRICS_PORT": str(self.orders_port + 12),
            "INVOICES_RELAY_METRICS_PORT": str(self.orders_port + 13),
        }
        if self.name == "orderflow":
            env.update(
                BROKER_URL=f"amqp://guest:guest@{HOST}:5672/{self.vhost}",
                RABBITMQ_QUEUE_TYPE=args.queue_type,
                ORDERS_DATABASE_URL=system.pg_url(self.databases[0]),
                INVOICES_DATABASE_URL=system.pg_url(self.databases[1]),
            )
        else:
            assert self.data_dir is not None
            env["ORDERFLOW_DATA_DIR"] = str(self.data_dir)
            env["OTEL_TRACES_EXPORTER"] = args.standalone_traces
            for name in ("BROKER_URL", "ORDERS_DATABASE_URL", "INVOICES_DATABASE_URL"):
                env.pop(name, None)
        return env

    def orders(self) -> Orders:
        """A reader of the system's orders."""
        if self.data_dir is not None:
            return SqliteOrders(self.data_dir / "orders.sqlite3")
        return PostgresOrders(self.databases[0])


def systems(results: Path) -> dict[str, System]:
    """The three systems, each on its own ports, vhost and databases."""
    return {
        "orderflow": System(
            "orderflow",
            4333,
            "orderflow-bench",
            ("orderflow_bench_orders", "orderflow_bench_invoices"),
            None,
        ),
        "naive": System(
            "naive",
            4353,
            "orderflow-bench-naive",
            ("naive_bench_orders", "naive_bench_invoices"),
            None,
        ),
        "standalone": System("standalone", 4373, None, (), results / "standalone-data"),
    }
