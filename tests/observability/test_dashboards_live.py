"""LIVE: every panel of the orderflow dashboards shows data from a running system.

The distributed system runs as separate processes on the real RabbitMQ and PostgreSQL
(tests/integration/cluster.py), and Debian's ``prometheus`` scrapes every part each
second with the jobs and alert rules of ops/prometheus/ (targets rewritten to the
cluster's free ports). Load goes in: orders, idempotent replays, payments,
cancellations, a credit rejection, gateway screens, 4xx answers, a malformed message
and one whose step keeps failing until it is dead-lettered. Then Prometheus's HTTP API
answers every panel target of the Saga, Workers and HTTP dashboards with data.

RabbitMQ's panels are queried too when the local broker has ``rabbitmq_prometheus``
enabled (``rabbitmq-plugins list``); Kong's need a Kong we do not run. Without the
``prometheus`` binary these tests skip; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
import pika
import pytest
import yaml

from tests.integration.cluster import Cluster, broker_url, free_port, wait_until

from .support import ORDERFLOW_DASHBOARDS, PROMETHEUS, Query, queries, skip_or_fail

pytestmark = pytest.mark.integration

RABBITMQ_METRICS_PORT = 15692
SCRAPE = "1s"
QUERY_DEADLINE = 90.0  # seconds for every panel to show data


# -- Prometheus as a subprocess ------------------------------------------------------------


class Prometheus:
    """Debian's ``prometheus`` on a free port, with its data in a temporary directory."""

    def __init__(self, binary: str, config: dict[str, Any], workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = workdir / "prometheus.log"
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{self.log()}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/-/ready", timeout=2
                ) as response:
                    return response.status == 200
            except (urllib.error.URLError, ConnectionError):
                return False

        wait_until(ready, 30, "prometheus to be ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("/api/v1/query", query=expr)["result"]

    def targets(self) -> list[dict[str, Any]]:
        return self.api("/api/v1/targets", state="active")["activeTargets"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def rabbitmq_prometheus_enabled() -> bool:
    """Whether the local RabbitMQ runs rabbitmq_prometheus (then we scrape it too)."""
    if shutil.which("rabbitmq-plugins") is None:
        return False
    listed = subprocess.run(
        ["rabbitmq-plugins", "list", "--enabled", "--minimal"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "rabbitmq_prometheus" in listed.stdout.split()


def scrape_config(cluster: Cluster, with_rabbitmq: bool) -> dict[str, Any]:
    """ops/prometheus/prometheus.yml with its targets moved to the cluster's ports."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    where = {
        "orders:3333": cluster.ports["orders"],
        "invoices:3334": cluster.ports["invoices"],
        "gateway:3000": cluster.ports["gateway"],
        "audit:3335": cluster.ports["audit"],
        **{
            f"{part}:{port}": cluster.metrics_ports[part]
            for part, port in (
                ("orders-worker", 9191),
                ("invoices-worker", 9192),
                ("orders-relay", 9301),
                ("invoices-relay", 9302),
            )
        },
    }
    if with_rabbitmq:
        where["rabbitmq:15692"] = RABBITMQ_METRICS_PORT
    config["global"] = {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE}
    config["rule_files"] = [str(PROMETHEUS / name) for name in config["rule_files"]]
    jobs = []
    for job in config["scrape_configs"]:
        targets = [t for static in job["static_configs"] for t in static["targets"]]
        if not all(target in where for target in targets):
            assert job["job_name"].startswith(("rabbitmq", "kong")), job["job_name"]
            continue  # a server this test does not run
        job["static_configs"] = [{"targets": [f"127.0.0.1:{where[t]}" for t in targets]}]
        jobs.append(job)
    config["scrape_configs"] = jobs
    return config


# -- the load --------------------------------------------------------------------------------


def publish(cluster: Cluster, queue: str, actor: str, **kwargs: object) -> str:
    """Put a message straight on a queue, as a misbehaving producer would."""
    message = dramatiq.Message(
        queue_name=queue, actor_name=actor, args=(), kwargs=kwargs, options={}
    )
    connection = pika.BlockingConnection(pika.URLParameters(broker_url(cluster.vhost)))
    try:
        connection.channel().basic_publish(
            "", queue, message.encode(), pika.BasicProperties(delivery_mode=2)
        )
    finally:
        connection.close()
    return message.message_id


def place(cluster: Cluster, customer: str, key: str | None = None) -> dict[str, Any]:
    status, order = cluster.place_order(customer, price="12.50", quantity=2, key=key)
    assert status == 201, order
    return order


def scraped_posts(prometheus: Prometheus) -> float:
    """POST /orders answered 201, as Prometheus last scraped the orders front."""
    result = prometheus.query(
        'sum(orderflow_http_requests_total{service="orders", route="/orders", status="201"})'
    )
    return float(result[0]["value"][1]) if result else 0.0


def drive(cluster: Cluster, prometheus: Prometheus) -> dict[str, int]:
    """Traffic that gives every panel something to show; returns what it did."""
    done = {"placed": 0, "replayed": 0, "paid": 0, "cancelled": 0, "rejected": 0}
    # A customer with no credit to speak of: their order is rejected
    status, _, _ = cluster.request(
        "PUT", "invoices", "/accounts/live-poor", {"credit_limit": "1.00"}
    )
    assert status == 200
    placed: list[tuple[str, dict[str, Any]]] = []
    for wave in range(3):  # in waves, so that rates see counters move between scrapes
        for n in range(4):
            customer = f"live-c{n}"
            key = f"live-key-{wave}-{n}"
            placed.append((customer, place(cluster, customer, key=key)))
            if n == 0:
                again = place(cluster, customer, key=key)  # the same key: a replay
                assert again["id"] == placed[-1][1]["id"]
                done["replayed"] += 1
        done["placed"] += 4
        # Each wave is scraped before the next, so rates see the counters move
        answered = done["placed"] + done["replayed"]
        wait_until(
            lambda answered=answered: scraped_posts(prometheus) >= answered,
            30,
            f"prometheus to scrape {answered} POST /orders",
        )
    rejected = place(cluster, "live-poor")
    cluster.wait_for_status(rejected["id"], "cancelled")
    done["rejected"] += 1
    for index, (customer, order) in enumerate(placed):
        confirmed = cluster.wait_for_status(order["id"], "confirmed")
        token = cluster.token(customer)
        if index % 4 == 1:  # pay some
            status, _, _ = cluster.request(
                "POST",
                "invoices",
                f"/invoices/{confirmed['invoice_id']}/payments",
                {"amount": confirmed["total"]},
                token=token,
            )
            assert status == 200
            done["paid"] += 1
        elif index % 4 == 2:  # cancel some: their invoices are voided
            status, _, _ = cluster.request(
                "POST", "orders", f"/orders/{order['id']}/cancel", token=token
            )
            assert status == 200
            done["cancelled"] += 1
        # The gateway's screens, and a 404 from each service
        assert cluster.request("GET", "gateway", "/me/orders", token=token)[0] == 200
        assert cluster.request("GET", "gateway", f"/me/orders/{order['id']}", token=token)[0] == 200
    assert cluster.request("GET", "orders", f"/orders/{uuid.uuid4()}")[0] == 404
    assert cluster.request("GET", "invoices", f"/invoices/{uuid.uuid4()}")[0] == 404
    # A malformed message (no customer, total or currency): it fails at once, is recorded
    # as a dead letter, and the InvoiceFailed it causes dead-letters on the orders side
    # too, since that order does not exist.
    publish(
        cluster,
        "invoices",
        "issue_invoice",
        order_id=str(uuid.uuid4()),
        dedupe_key=str(uuid.uuid4()),
    )
    # A step that keeps failing (a customer id longer than the column): retried with
    # backoff, then dead-lettered.
    publish(
        cluster,
        "invoices",
        "void_invoice",
        order_id=str(uuid.uuid4()),
        customer_id="x" * 80,
        reason="customer_cancelled",
        dedupe_key=str(uuid.uuid4()),
    )
    wait_until(
        lambda: (
            {"issue_invoice", "void_invoice"}
            <= {
                actor
                for (actor,) in cluster.query(
                    "invoices", "SELECT actor_name FROM invoices_dead_letters"
                )
            }
            and cluster.query("orders", "SELECT count(*) FROM orders_dead_letters")[0][0] >= 1
        ),
        60,
        "the dead letters",
    )
    for customer, _ in placed[-4:]:  # a last wave after the failures
        place(cluster, customer)
    return done


# -- the fixture -----------------------------------------------------------------------------


@dataclass
class Live:
    cluster: Cluster
    prometheus: Prometheus
    with_rabbitmq: bool
    done: dict[str, int]

    def diagnostics(self) -> str:
        return f"{self.cluster.logs()}\n===== prometheus =====\n{self.prometheus.log()}"


@pytest.fixture(scope="module")
def live(servers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    binary = shutil.which("prometheus")
    if binary is None:
        skip_or_fail("the prometheus binary is not installed (Debian package `prometheus`)")
    workdir = tmp_path_factory.mktemp("live-dashboards")
    cluster = Cluster(workdir, servers, MAX_RETRIES="2", MIN_BACKOFF_MS="100", MAX_BACKOFF_MS="500")
    cluster.create()
    prometheus: Prometheus | None = None
    try:
        cluster.start()
        cluster.start("audit-api")  # every process the stack runs is scraped, this one too
        with_rabbitmq = rabbitmq_prometheus_enabled()
        prometheus = Prometheus(binary, scrape_config(cluster, with_rabbitmq), workdir)
        prometheus.wait_ready()
        expected = len(prometheus.api("/api/v1/targets")["activeTargets"])
        wait_until(
            lambda: prometheus.targets() and all(t["health"] == "up" for t in prometheus.targets()),
            60,
            f"prometheus to scrape all {expected} targets",
            interval=0.5,
        )
        done = drive(cluster, prometheus)
        yield Live(cluster, prometheus, with_rabbitmq, done)
    finally:
        if prometheus is not None:
            prometheus.stop()
        cluster.destroy()


# -- the tests -------------------------------------------------------------------------------


def finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(sample["value"][1])) for sample in result)


def wait_for_data(live: Live, selected: list[Query]) -> dict[str, list[dict[str, Any]]]:
    """Poll Prometheus until every query returns at least one finite sample."""
    answers: dict[str, list[dict[str, Any]]] = {}
    missing = list(selected)
    deadline = time.monotonic() + QUERY_DEADLINE
    while missing:
        for query in list(missing):
            answers[query.name] = live.prometheus.query(query.promql())
            if finite(answers[query.name]):
                missing.remove(query)
        if not missing:
            break
        if time.monotonic() > deadline:
            raise AssertionError(
                "no data after {:.0f} s for:\n{}\n{}".format(
                    QUERY_DEADLINE,
                    "\n".join(f"  {q.name}: {q.promql()} -> {answers[q.name]}" for q in missing),
                    live.diagnostics(),
                )
            )
        time.sleep(1)
    return answers


def report(answers: dict[str, list[dict[str, Any]]]) -> None:
    """One line per query: the series it returned and their values (pytest -s shows it)."""
    for name, result in answers.items():
        values = ", ".join(
            "{}={}".format(
                ",".join(f"{k}={v}" for k, v in sorted(s["metric"].items()) if k != "__name__")
                or "-",
                s["value"][1],
            )
            for s in result[:6]
        )
        print(f"{name}: {len(result)} series; {values}")


def test_prometheus_scrapes_every_part_of_the_running_system(live: Live) -> None:
    targets = live.prometheus.targets()
    jobs = {t["labels"]["job"] for t in targets}
    assert {"orderflow-fronts", "orderflow-workers", "orderflow-relays"} <= jobs
    # three fronts and the audit part, two worker pools, two relays
    assert len([t for t in targets if t["labels"]["job"].startswith("orderflow-")]) == 8
    assert all(t["health"] == "up" for t in targets), [
        (t["scrapeUrl"], t["lastError"]) for t in targets
    ]
    print(f"load: {live.done}; targets: {sorted(t['scrapeUrl'] for t in targets)}")


@pytest.mark.parametrize("dashboard", ORDERFLOW_DASHBOARDS)
def test_every_panel_of_the_orderflow_dashboards_shows_data(live: Live, dashboard: str) -> None:
    answers = wait_for_data(live, queries(dashboard))
    report(answers)


def test_business_metrics_observed_in_worker_processes_reach_prometheus(live: Live) -> None:
    # Confirmations happen in the orders worker, voids and dead letters in the invoices
    # worker: these counts can only come from the workers' multiprocess directories.
    expected = {
        'orderflow_saga_duration_seconds_count{outcome="confirmed"}': live.done["placed"],
        'orderflow_compensations_total{reason="credit_rejected"}': live.done["rejected"],
        'orderflow_invoices_voided_total{refund="false"}': live.done["cancelled"],
        'orderflow_dead_letters_total{service="invoices", actor="void_invoice"}': 1,
        'orderflow_dead_letters_total{service="invoices", actor="issue_invoice"}': 1,
        'orderflow_dead_letters_total{service="orders", actor="cancel_order"}': 1,
        'dramatiq_message_retries_total{actor_name="void_invoice"}': 2,  # MAX_RETRIES
        'dramatiq_message_rejects_total{actor_name="void_invoice"}': 1,
    }

    def total(selector: str) -> float:
        worker_selector = selector.replace("{", '{job="orderflow-workers", ', 1)
        result = live.prometheus.query(f"sum({worker_selector})")
        return float(result[0]["value"][1]) if result else -1.0

    for selector, count in expected.items():
        wait_until(lambda s=selector, c=count: total(s) >= c, 30, f"{selector} >= {count}")
    replays = live.prometheus.query(
        'sum(orderflow_idempotent_replays_total{job="orderflow-fronts", service="orders"})'
    )
    assert float(replays[0]["value"][1]) == live.done["replayed"]


def test_the_dead_letters_alert_fires_in_a_real_prometheus(live: Live) -> None:
    firing = 'ALERTS{alertname="OrderflowDeadLetters", alertstate="firing"}'

    def services() -> set[str]:
        return {sample["metric"]["service"] for sample in live.prometheus.query(firing)}

    wait_until(lambda: services() == {"orders", "invoices"}, 30, firing + " for both services")
    assert not live.prometheus.query('ALERTS{alertname="OrderflowTargetDown"}')
    assert not live.prometheus.query('ALERTS{alertname="OrderflowSagaStuck"}')


def test_every_panel_of_the_rabbitmq_dashboard_shows_data(live: Live) -> None:
    if not live.with_rabbitmq:
        pytest.skip(
            "the local RabbitMQ does not run rabbitmq_prometheus (`rabbitmq-plugins list`); "
            "enable it to query the RabbitMQ dashboard's panels too"
        )
    answers = wait_for_data(live, queries("rabbitmq"))
    report(answers)


def test_the_kong_dashboard_needs_a_running_kong() -> None:
    pytest.skip("Kong's panels query Kong's own exporter (kong:8100), which these tests do not run")
