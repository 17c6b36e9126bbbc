"""A distributed orderflow for tests: each part its own process, on real RabbitMQ and PostgreSQL.

Every cluster gets two fresh PostgreSQL databases and empty queues in the test
vhost, free ports, and a log file per process (printed when a test fails).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pika
import psycopg2
import psycopg2.extensions

from actors.broker import connection_parameters
from ops.shared.web.auth import TokenKeys, mint
from tests.ports import free_port

PG_ADMIN_DSN = os.environ.get("ORDERFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_BASE = os.environ.get("ORDERFLOW_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")
# a vhost of its own per concurrent test run (ORDERFLOW_TEST_VHOST), queues are purged per cluster
VHOST = os.environ.get("ORDERFLOW_TEST_VHOST", "orderflow-test")
QUEUES = [f"{queue}{suffix}" for queue in ("orders", "invoices") for suffix in ("", ".DQ", ".XQ")]
JWT_SECRET = "integration-tests-only-secret-0123456789"
PARTS = (
    "orders-api",
    "invoices-api",
    "gateway-api",
    "orders-worker",
    "invoices-worker",
    "orders-relay",
    "invoices-relay",
)
# parts a test starts when it needs them (``cluster.start("audit-api")``): not on the saga's path
OPERATOR_PARTS = ("audit-api",)


def admin_connection(dsn: str = PG_ADMIN_DSN) -> psycopg2.extensions.connection:
    connection = psycopg2.connect(dsn, connect_timeout=3)
    connection.autocommit = True
    return connection


def _admin(statement: str, dsn: str = PG_ADMIN_DSN) -> None:
    admin = admin_connection(dsn)
    try:
        with admin.cursor() as cursor:
            cursor.execute(statement)
    finally:
        admin.close()


@contextlib.contextmanager
def throwaway_database(prefix: str) -> Iterator[str]:
    """A PostgreSQL database ``<prefix>_<random>``; yields its URL, drops it afterwards
    (forcing out any session left)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def broker_url(vhost: str) -> str:
    return f"{AMQP_BASE}/{quote(vhost, safe='')}"


@dataclasses.dataclass(frozen=True)
class Servers:
    """Where a cluster's RabbitMQ and PostgreSQL are: the machine's own by default; the
    cluster scenarios (tests/cluster) pass several RabbitMQ nodes and a primary with its
    standby."""

    amqp_bases: tuple[str, ...] = (AMQP_BASE,)  # a node each, ``amqp://user:pw@host:port``
    pg_hosts: str = "127.0.0.1:5432"  # libpq's host list: ``h1:p1,h2:p2`` for several
    pg_params: tuple[tuple[str, str], ...] = ()  # added to every database URL
    # services whose database stays on the machine's own PostgreSQL (C5: one service's
    # server fails over, the other's does not)
    local_databases: tuple[str, ...] = ()

    def of(self, service: str) -> Servers:
        """The servers ``service``'s database is on."""
        return LOCAL if service in self.local_databases else self

    def broker_url(self, vhost: str) -> str:
        """``BROKER_URL``: every node, in order."""
        return ",".join(f"{base}/{quote(vhost, safe='')}" for base in self.amqp_bases)

    def database_url(self, database: str, **params: str) -> str:
        query = urlencode({**dict(self.pg_params), **params}, quote_via=quote)
        return f"postgresql://postgres@{self.pg_hosts}/{database}" + (f"?{query}" if query else "")

    @property
    def admin_dsn(self) -> str:
        return self.database_url("postgres") if self.pg_params else PG_ADMIN_DSN


LOCAL = Servers()


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def account_locked(cluster: Cluster, customer_id: str, *tables: str) -> Iterator[None]:
    """Inside the block another session holds ``customer_id``'s billing account row
    (created for it) and an exclusive lock on each of ``tables``; all released after."""
    blocker = psycopg2.connect(cluster.database_url("invoices"))
    try:
        with blocker.cursor() as cursor:
            cursor.execute(
                "INSERT INTO billing_accounts (customer_id, credit_limit_minor, created_at,"
                " updated_at) VALUES (%s, 100000, now(), now())",
                (customer_id,),
            )
            blocker.commit()
            cursor.execute(
                "SELECT * FROM billing_accounts WHERE customer_id = %s FOR UPDATE", (customer_id,)
            )
            for table in tables:
                cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        blocker.rollback()
        blocker.close()


def quick_to_give_up(make_cluster: Callable[..., Cluster]) -> Cluster:
    """A running cluster whose invoices worker gives up on a step after one quick
    retry, and whose invoices database connections wait at most 300 ms for a lock: with
    :func:`account_locked`, ``issue_invoice`` fails for good within a second or two."""
    cluster = make_cluster(MAX_RETRIES="1", MIN_BACKOFF_MS="100", MAX_BACKOFF_MS="200")
    cluster.env["INVOICES_DATABASE_URL"] = cluster.database_url(
        "invoices", options="-c lock_timeout=300"
    )
    cluster.start()
    return cluster


class Cluster:
    """Both services as separate processes; the test starts, stops and kills parts."""

    def __init__(
        self, workdir: Path, vhost: str, servers: Servers = LOCAL, **overrides: str
    ) -> None:
        self.workdir = workdir
        self.vhost = vhost
        self.servers = servers
        self.tag = uuid.uuid4().hex[:10]
        self.databases = {
            "orders": f"oft_{self.tag}_orders",
            "invoices": f"oft_{self.tag}_invoices",
        }
        self.ports = {
            service: free_port() for service in ("orders", "invoices", "gateway", "audit")
        }
        # Prometheus endpoints of the worker pools (Dramatiq's exporter) and relays.
        self.metrics_ports = {part: free_port() for part in PARTS if "-api" not in part}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        # a part's command line instead of the usual one, and extra modules for a worker
        self.commands: dict[str, list[str]] = {}
        self.worker_modules: dict[str, list[str]] = {}
        self.env = {
            **os.environ,
            "BROKER_URL": servers.broker_url(vhost),
            "ORDERS_DATABASE_URL": self.database_url("orders"),
            "INVOICES_DATABASE_URL": self.database_url("invoices"),
            "ORDERS_PORT": str(self.ports["orders"]),
            "INVOICES_PORT": str(self.ports["invoices"]),
            "GATEWAY_PORT": str(self.ports["gateway"]),
            "AUDIT_PORT": str(self.ports["audit"]),
            **{
                f"{part.replace('-', '_').upper()}_METRICS_PORT": str(port)
                for part, port in self.metrics_ports.items()
            },
            "WORKER_PROCESSES": "1",
            "WORKER_THREADS": "4",
            "RELAY_POLL_INTERVAL": "0.5",
            "LOG_LEVEL": "INFO",
            "ORDERFLOW_JWT_SECRET": JWT_SECRET,
            **overrides,
        }

    # -- lifecycle -------------------------------------------------------

    def create(self) -> None:
        """Fresh databases, empty queues, schemas migrated."""
        for service, name in self.databases.items():
            _admin(f'CREATE DATABASE "{name}"', self.servers.of(service).admin_dsn)
        self.purge_queues()
        subprocess.run(
            [sys.executable, "-m", "ops.cli", "migrate"],
            env=self.env,
            cwd=self.workdir,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def destroy(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        for service, name in self.databases.items():
            _admin(
                f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', self.servers.of(service).admin_dsn
            )

    def database_url(self, service: str, **params: str) -> str:
        return self.servers.of(service).database_url(self.databases[service], **params)

    def broker(self) -> pika.BlockingConnection:
        """A connection to the cluster's broker (its first node that answers)."""
        return pika.BlockingConnection(connection_parameters(self.servers.broker_url(self.vhost)))

    def purge_queues(self) -> None:
        connection = self.broker()
        try:
            channel = connection.channel()
            for queue in QUEUES:
                channel.queue_delete(queue)
        finally:
            connection.close()

    def start(self, *parts: str) -> None:
        """Start parts (all by default) and wait until each is ready."""
        for part in parts or PARTS:
            service, kind = part.split("-")
            argv = {
                "api": [sys.executable, "-m", "ops.cli", "serve", service],
                "relay": [sys.executable, "-m", "ops.cli", "relay", service],
                "worker": [
                    sys.executable,
                    "-m",
                    "dramatiq",
                    f"ops.worker:{service}",
                    *self.worker_modules.get(part, []),
                    "--queues",
                    service,
                    "--processes",
                    self.env["WORKER_PROCESSES"],
                    "--threads",
                    self.env["WORKER_THREADS"],
                ],
            }[kind]
            argv = self.commands.get(part, argv)
            log = (self.workdir / f"{part}.log").open("ab")
            self.processes[part] = subprocess.Popen(
                argv,
                env={**self.env, **self.metrics_env(part), "ORDERFLOW_PROCESS": part},
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        for part in parts or PARTS:
            self._wait_ready(part)

    def metrics_env(self, part: str) -> dict[str, str]:
        """What a worker pool needs for Dramatiq's Prometheus exporter: a free port and
        a multiprocess directory of its own, shared with orderflow's metrics."""
        if not part.endswith("-worker"):
            return {}
        directory = self.workdir / f"metrics-{self.tag}" / part
        directory.mkdir(parents=True, exist_ok=True)
        return {
            "dramatiq_prom_host": "127.0.0.1",
            "dramatiq_prom_port": str(self.metrics_ports[part]),
            "dramatiq_prom_db": str(directory),
            "PROMETHEUS_MULTIPROC_DIR": str(directory),
        }

    def stop(self, part: str) -> None:
        """Stop a part gracefully (SIGTERM), killing it if it lingers."""
        process = self.processes.pop(part, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def kill(self, part: str) -> None:
        """``kill -9`` a part and all its processes (a dramatiq pool has children)."""
        process = self.processes.pop(part)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def _wait_ready(self, part: str) -> None:
        service, kind = part.split("-")
        process = self.processes[part]

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"{part} exited with {process.returncode}:\n{self.log(part)}")
            if kind == "api":
                return self.request("GET", f"{service}", "/ready")[0] == 200
            marker = (
                "Worker process is ready for action"
                if kind == "worker"
                else f"relay {service}-relay started"
            )
            return marker in self.log(part)

        wait_until(ready, 30, f"{part} to be ready")

    def log(self, part: str) -> str:
        path = self.workdir / f"{part}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        started = [part for part in OPERATOR_PARTS if self.log(part)]
        return "\n".join(
            f"===== {part} =====\n{self.log(part)[-4000:]}" for part in (*PARTS, *started)
        )

    # -- HTTP --------------------------------------------------------------

    def token(self, subject: str, role: str = "customer") -> str:
        """A token signed with the cluster's secret."""
        keys = TokenKeys.hs256(JWT_SECRET.encode(), "orderflow", "orderflow")
        return mint(keys, subject, role, 600)

    def request(
        self,
        method: str,
        service: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """One HTTP request (as an operator unless ``token`` says otherwise); returns
        status, parsed JSON body (or None) and headers."""
        data = None if body is None else json.dumps(body).encode()
        bearer = token or self.token("operator", "operator")
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ports[service]}{path}",
            data=data,
            method=method,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {bearer}",
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                raw, status, answer_headers = response.read(), response.status, response.headers
        except urllib.error.HTTPError as error:
            raw, status, answer_headers = error.read(), error.code, error.headers
        except (urllib.error.URLError, ConnectionError):
            return 0, None, {}
        return status, (json.loads(raw) if raw else None), dict(answer_headers)

    def place_order(
        self, customer: str, price: str = "10.00", quantity: int = 1, key: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Idempotency-Key": key} if key else {}
        body = {
            "currency": "EUR",
            "lines": [{"sku": "SKU-1", "quantity": quantity, "unit_price": price}],
        }
        status, answer, _ = self.request(
            "POST", "orders", "/orders", body, headers, token=self.token(customer)
        )
        return status, answer

    def order(self, order_id: str) -> dict[str, Any]:
        return self.request("GET", "orders", f"/orders/{order_id}")[1]

    def wait_for_status(self, order_id: str, *statuses: str, timeout: float = 30) -> dict:
        return wait_until(
            lambda: (o := self.order(order_id)) and o["status"] in statuses and o,
            timeout,
            f"order {order_id} to become {' or '.join(statuses)}",
        )

    # -- direct reads for assertions -----------------------------------------

    def query(self, service: str, sql: str, *params: Any) -> list[tuple]:
        connection = psycopg2.connect(self.database_url(service))
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            connection.close()

    def execute(self, service: str, sql: str, *params: Any) -> None:
        """Run one statement and commit it (the test changes the schema or data)."""
        connection = psycopg2.connect(self.database_url(service))
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(sql, params)
        finally:
            connection.close()

    def queue_depth(self, queue: str) -> int:
        connection = self.broker()
        try:
            return connection.channel().queue_declare(queue, passive=True).method.message_count
        finally:
            connection.close()
